"""``bastion lock``, ``bastion fetch``, ``bastion packages``: the verified package supply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bastion.cli._console import RichProgress, info, stdout
from bastion.cli._options import (
    DefinitionArg,
    FormatOpt,
    ListFormat,
    LockedOpt,
    PlatformOpt,
    VariantOpt,
    definition_platforms,
)
from bastion.config import Settings

if TYPE_CHECKING:
    from bastion.cache import Fetcher
    from bastion.lock import Planned

# The supply libraries are imported inside the commands: the definition models alone cost start-up
# time that every other command would pay (docs/benchmarks.md).


@contextmanager
def _planned(
    definition: Path, locked: bool, variants: list[str] | None, platform: str | None
) -> Iterator[tuple[Settings, Planned, tuple[tuple[str, str], ...], Fetcher]]:
    """Load the definition and run the pipeline's resolve stage; the fetcher stays open inside the block."""
    from bastion.catalog import load_definition
    from bastion.pipeline import resolve, select_locked, supply

    settings = Settings.from_env()
    spec = load_definition(definition)
    platforms = definition_platforms(spec, variants, platform)
    with RichProgress() as progress, supply(settings, progress) as fetcher:
        planned = resolve(spec, settings, fetcher, locked=locked)
        yield settings, planned, select_locked(planned.lock, variants, platforms), fetcher


def lock_command(
    definition: DefinitionArg,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Resolve again from the current indices and rewrite the lock, even if it satisfies DEFINITION.",
        ),
    ] = False,
    output: FormatOpt = ListFormat.table,
) -> None:
    """Write <definition>.lock.json: every variant and platform of DEFINITION resolved from verified
    indices. A lock that still satisfies DEFINITION is kept as it is, unless --update.

    A lock always holds the whole definition (so every --locked command can use it): choose platforms
    in the definition's `platforms:`, and with --variant/--platform on build, fetch and packages."""
    from bastion.catalog import load_definition
    from bastion.pipeline import resolve, supply

    settings = Settings.from_env()
    spec = load_definition(definition)
    with RichProgress() as progress, supply(settings, progress) as fetcher:
        planned = resolve(spec, settings, fetcher, locked=False, update=update)
    saved = planned.save()
    lock = planned.lock
    counts = {v: {p: len(locked.packages) for p, locked in per.items()} for v, per in lock.variants.items()}
    if output is ListFormat.json:
        stdout.print_json(json.dumps({"lock": str(planned.path), "written": saved, "packages": counts}))
        return
    if saved:
        info(f"resolved afresh ({planned.because})")
        for variant, per_platform in counts.items():
            for platform, count in per_platform.items():
                info(f"{variant} {platform}: {count} packages")
    else:
        info("the lock satisfies the definition: kept as it is ('bastion lock --update' resolves again)")
    stdout.print(str(planned.path))


def fetch_command(
    definition: DefinitionArg,
    locked: LockedOpt = False,
    variant: VariantOpt = None,
    platform: PlatformOpt = None,
    output: FormatOpt = ListFormat.table,
) -> None:
    """Resolve DEFINITION (or read its lock) and download every package into the verified cache."""
    with _planned(definition, locked, variant, platform) as (settings, planned, selection, fetcher):
        from bastion.pipeline import fetch

        paths = fetch(planned, fetcher, selection).debs
    lock = planned.lock
    rows = []
    for v, p in selection:
        for package in lock.platform(v, p).packages:
            rows.append((v, p, package, paths[package.sha256]))
    if output is ListFormat.json:
        stdout.print_json(
            json.dumps(
                [
                    {
                        "variant": v,
                        "platform": p,
                        **pkg.model_dump(mode="json", by_alias=True),
                        "path": str(path),
                    }
                    for v, p, pkg, path in rows
                ]
            )
        )
        return
    table = Table("variant", "platform", "package", "version", "arch", "source", "size", "suite", box=None)
    for v, p, pkg, _ in rows:
        table.add_row(v, p, pkg.name, pkg.version, pkg.architecture, pkg.source, f"{pkg.size:,}", pkg.suite)
    stdout.print(table)
    info(f"{len(paths)} verified package files in {settings.cache_dir}")


def packages_command(
    definition: DefinitionArg,
    locked: LockedOpt = False,
    variant: VariantOpt = None,
    platform: PlatformOpt = None,
    output: FormatOpt = ListFormat.table,
) -> None:
    """Show what DEFINITION would install and why: the dependency path to each package."""
    with _planned(definition, locked, variant, platform) as (_, planned, selection, _fetcher):
        lock = planned.lock
    records = []
    for v, p in selection:
        locked_platform = lock.platform(v, p)
        parents = {pkg.name: pkg.required_by for pkg in locked_platform.packages}
        for pkg in locked_platform.packages:
            chain = [pkg.name]
            while (parent := parents.get(chain[-1])) is not None and parent not in chain:
                chain.append(parent)
            records.append(
                {
                    "variant": v, "platform": p, "name": pkg.name, "version": pkg.version,
                    "why": " -> ".join(reversed(chain)), "relation": pkg.relation,
                }
            )  # fmt: skip
        for dropped in locked_platform.dropped:
            records.append(
                {
                    "variant": v, "platform": p, "name": None, "version": None,
                    "why": f"{dropped.parent}: '{dropped.relation}' not followed: {dropped.because}",
                    "relation": dropped.relation,
                }
            )  # fmt: skip
    if output is ListFormat.json:
        stdout.print_json(json.dumps(records))
        return
    table = Table("variant", "platform", "package", "version", "why", box=None)
    for r in records:
        table.add_row(r["variant"], r["platform"], r["name"] or "-", r["version"] or "-", r["why"])
    stdout.print(table)


def register(app: typer.Typer) -> None:
    app.command("lock")(lock_command)
    app.command("fetch")(fetch_command)
    app.command("packages")(packages_command)
