"""``bastion sla report`` and ``bastion sla rescan``: the CVE clocks of the published images against
the fix-time policy, and re-scanning the published images with the current vulnerability data."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli._console import info, stdout, warning

if TYPE_CHECKING:
    from bastion.factory import SlaRow

sla_app = typer.Typer(
    name="sla",
    help="The CVE clock: how long each published image has been affected, against the fix-time policy.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


ImagesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--image", help="Only this image (a definition name); repeatable.", metavar="NAME", show_default=False
    ),
]
_COLUMNS = (
    "image",
    "vulnerability",
    "severity",
    "packages",
    "first seen",
    "fix available",
    "closed",
    "open for",
    "since fix",
    "due",
    "sla",
)


@sla_app.command("report")
def report_command(
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.")
    ] = ReportFormat.table,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when an open item is past its deadline.")
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Fix-time policy (YAML: days per severity and for KEV; docs/sla.md). "
            "Default: critical and high 7, medium and low 30, KEV 1.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    images: ImagesOpt = None,
) -> None:
    """Every open and closed clock item with its age against the policy: open items past their
    deadline are breaches, closed items closed after theirs are late. Reads the factory database."""
    from bastion import _clock as clock
    from bastion.config import Settings
    from bastion.errors import FindingsFound
    from bastion.factory import SlaPolicy, clock_items, load_sla_policy, open_state, sla_rows

    loaded = load_sla_policy(policy) if policy is not None else SlaPolicy()
    settings = Settings.from_env()
    with open_state(settings) as state:
        items = clock_items(state, images=images or ())
    rows = sla_rows(items, loaded, clock.now())
    if output_format is ReportFormat.json:
        document = {"policy": loaded.model_dump(), "items": [row.as_json() for row in rows]}
        stdout.print(json.dumps(document, indent=2, sort_keys=True), markup=False)
    elif output_format is ReportFormat.markdown:
        stdout.print(_markdown(rows), markup=False)
    else:
        _table(rows)
    breaches = [row for row in rows if row.breach]
    opened = sum(1 for row in rows if row.item.open)
    info(
        f"{len(rows)} items: {opened} open, {len(rows) - opened} closed; {len(breaches)} past their "
        f"deadline, {sum(1 for row in rows if row.late)} closed late"
    )
    if exit_code and breaches:
        first = breaches[0].item
        raise FindingsFound(
            f"{len(breaches)} open items past their deadline (first: {first.image} {first.vulnerability})"
        )


@sla_app.command("rescan")
def rescan_command(images: ImagesOpt = None) -> None:
    """Re-scan each image's newest publication (recorded by the factory) with the current
    vulnerability database and start or stop its clocks; an image whose findings changed is
    re-attested. Run it after `bastion db import` or `db update`. An image that cannot be opened is
    one line, the others go on (exit 2 at the end)."""
    from bastion import _clock as clock
    from bastion.config import Settings
    from bastion.errors import InputError
    from bastion.factory import open_state, rescan

    settings = Settings.from_env()
    with open_state(settings) as state:
        results = rescan(state, settings, now=clock.now(), images=images or ())
    failed = 0
    for result in results:
        name = f"{result.publication.image}@{result.publication.digest[:19]}"
        if result.error is not None:
            failed += 1
            warning(f"{name}: {result.error}")
            continue
        assert result.observation is not None  # no error: observed
        seen = result.observation
        info(
            f"{name}: {len(seen.open)} open, {len(seen.opened)} opened, {len(seen.closed)} closed, "
            f"{len(seen.updated)} updated"
        )
        if result.reattested:
            info(
                f"{name}: re-attested (new CVE scan and OpenVEX pushed beside {result.publication.reference})"
            )
        elif seen.changed:
            warning(
                f"{name}: findings changed, attestations not refreshed "
                "(not in the local store, or not published to a registry)"
            )
    info(f"{len(results)} published images re-scanned, {failed} failed")
    if failed:
        raise InputError(f"{failed} of {len(results)} published images could not be re-scanned")


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _cells(row: SlaRow) -> list[str]:
    from bastion._clock import rfc3339

    item = row.item
    closed = "-"
    if item.closed_at is not None:
        closed = rfc3339(item.closed_at) + (f" by {item.closed_digest[:19]}" if item.closed_digest else "")
    verdict = "BREACH" if row.breach else "late" if row.late else "ok" if row.due_at else "no deadline"
    return [
        item.image,
        item.vulnerability,
        item.severity + (" KEV" if item.kev else ""),
        item.packages,
        rfc3339(item.first_seen_at),
        rfc3339(item.fix_available_at) if item.fix_available_at else "-",
        closed,
        _duration(row.open_for),
        _duration(row.since_fix),
        rfc3339(row.due_at) if row.due_at else "-",
        verdict,
    ]


def _table(rows: list[SlaRow]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(*_COLUMNS, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*map(Text, _cells(row)), style="bold red" if row.breach else None)
    stdout.print(table if rows else "no CVE clock items")


def _markdown(rows: list[SlaRow]) -> str:
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(cell(text) for text in _cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.add_typer(sla_app)
