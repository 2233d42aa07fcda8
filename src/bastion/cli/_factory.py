"""``bastion factory plan``: what the trackers report now and what it would rebuild (a dry run)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._console import info, stdout, warning

factory_app = typer.Typer(
    name="factory",
    help="The rebuild factory: watch upstreams, rebuild what changed.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class PlanFormat(StrEnum):
    table = "table"
    json = "json"


@factory_app.command("plan")
def plan_command(
    catalog: Annotated[
        Path, typer.Option("--catalog", help="The catalog directory (*.yaml, */*.yaml).", metavar="DIR")
    ] = Path("catalog"),
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.table,
) -> None:
    """Poll every tracker of the catalog and show what changed against the stored state, and which
    images that would rebuild (in order, with the reason for each). Writes no state; a tracker that
    fails is one line and the others go on. Exit 0 whatever changed."""
    from rich.table import Table

    from bastion.config import Settings
    from bastion.factory import open_state, plan

    settings = Settings.from_env()
    with open_state(settings) as state:
        previous = state.trackers()
    result = plan(catalog, settings, previous)
    if output_format is PlanFormat.json:
        stdout.print(json.dumps(result.as_json(), indent=2, sort_keys=True), markup=False)
    else:
        trackers = Table("tracker", "kind", "stored", "now", "changes", box=None)
        for report in result.trackers:
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in report.changes.items())
            trackers.add_row(
                report.key, report.kind, report.stored or "-", report.now or "error", changes or "-"
            )
        stdout.print(trackers)
        rebuild = Table("order", "image", "because", box=None)
        for number, item in enumerate(result.rebuilds, 1):
            rebuild.add_row(str(number), item.image, "; ".join(item.reasons))
        stdout.print(rebuild if result.rebuilds else "nothing to rebuild")
    for report in result.trackers:
        if report.error:
            warning(report.error)
    for image in result.end_of_life:
        info(f"{image}: past its end of life, not rebuilt")
    info(
        f"{len(result.trackers)} trackers, {sum(1 for r in result.trackers if r.error)} failed, "
        f"{len(result.rebuilds)} images to rebuild ({result.requests} HTTP requests)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(factory_app)
