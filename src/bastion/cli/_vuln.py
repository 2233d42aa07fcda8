"""``bastion db import|update|status``, ``bastion cves`` and ``bastion vex``."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion._clock import now as clock_now
from bastion._clock import rfc3339
from bastion.cli._console import info, stdout, warning
from bastion.cli._options import IMAGE_HELP, ImagePlatformOpt, image_ref
from bastion.cli._output import OutputOpt, emit, to_stdout
from bastion.config import Settings
from bastion.errors import ExitCode, FindingsFound

if TYPE_CHECKING:
    from bastion.vex import VexDocument, VexStatementLike
    from bastion.vuln import ImportCounts, ScanResult

# cves and vex also read SBOM files.
ImageOrSbomArg = Annotated[
    str,
    typer.Argument(help=IMAGE_HELP + " Or sbom://FILE (SPDX 2.3 or CycloneDX 1.6 JSON).", show_default=False),
]


class CvesFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    markdown = "markdown"
    cyclonedx_vex = "cyclonedx-vex"


class StatusFormat(StrEnum):
    table = "table"
    json = "json"


db_app = typer.Typer(help="The vulnerability database: import files, update from the feeds, show status.",
                     no_args_is_help=True)  # fmt: skip


@db_app.command("import")
def db_import(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="OSV records (JSON/YAML, directories, all.zip), the Debian tracker JSON, the KEV JSON."
        ),
    ],
) -> None:
    """Load vulnerability data, recognised by content, in one transaction (re-import replaces changed records)."""
    from bastion.vuln import import_paths, open_database

    database = open_database(Settings.from_env().home)
    report = import_paths(database, paths)
    _print_report(report)


def _print_report(report: ImportCounts) -> None:
    info(
        f"imported {report.imported} records ({report.added} new, {report.replaced} replaced, "
        f"{report.unchanged} unchanged), {report.withdrawn} withdrawn, {report.kev} KEV entries, "
        + (f"{report.superseded} superseded by a later copy, " if report.superseded else "")
        + f"{report.skipped} skipped"
    )
    for reason in report.reasons:
        info(f"  skipped: {reason}")


@db_app.command("update")
def db_update() -> None:
    """Download the configured feeds (only what changed: ETag / If-Modified-Since) and import them."""
    from bastion.vuln import load_config, open_database, update

    settings = Settings.from_env()
    config = load_config(settings.home)
    result = update(open_database(settings.home), config, settings.cache_dir / "vuln")
    for feed in result.feeds:
        info(f"{feed.status:>10}  {feed.url}" + (f" ({feed.size} bytes)" if feed.size else ""))
    if result.report is not None:
        _print_report(result.report)


@db_app.command("status")
def db_status(
    output_format: Annotated[
        StatusFormat, typer.Option("--format", help="Output format.")
    ] = StatusFormat.table,
) -> None:
    """Sources, record counts and age of the vulnerability database."""
    from bastion.vuln import database_path, load_config, open_database, stale_sources

    settings = Settings.from_env()
    path = database_path(settings.home)
    if not path.exists():
        info(f"no vulnerability database at {path}: run `bastion db import` or `bastion db update`")
        raise typer.Exit(ExitCode.OK)
    database = open_database(settings.home)
    sources = database.sources()
    ecosystems = database.counts_by_ecosystem()
    if output_format is StatusFormat.json:
        data = {"path": str(path), "sources": [vars(s) for s in sources], "affected_by_ecosystem": ecosystems}
        stdout.print(json.dumps(data, indent=2), markup=False)
        return
    now = clock_now()
    for source in sources:
        imported = datetime.fromisoformat(source.imported_at.replace("Z", "+00:00"))
        age = (now - imported).total_seconds() / 3600
        stdout.print(f"{source.name:<16} {source.records:>9} records  imported {source.imported_at} ({age:.1f} h ago)  {source.location}", markup=False, highlight=False)  # fmt: skip
    for ecosystem, count in ecosystems.items():
        stdout.print(f"  {ecosystem:<14} {count:>9} affected entries", markup=False, highlight=False)
    for message in stale_sources(database, load_config(settings.home).max_age_hours):
        warning(message)


def cves_command(
    image: ImageOrSbomArg,
    vex: Annotated[
        list[Path] | None,
        typer.Option("--vex", help="OpenVEX or CycloneDX VEX document (repeatable).", show_default=False),
    ] = None,
    output_format: Annotated[CvesFormat, typer.Option("--format", help="Output format.")] = CvesFormat.table,
    only_fixed: Annotated[
        bool, typer.Option("--only-fixed", help="Only findings with a fixed version.")
    ] = False,
    only_unfixed: Annotated[bool, typer.Option("--only-unfixed", help="Only findings with no fix.")] = False,
    only_severity: Annotated[
        str | None,
        typer.Option("--only-severity", help="Comma-separated: critical,high,medium,low,negligible,unknown."),
    ] = None,
    only_kev: Annotated[
        bool, typer.Option("--only-kev", help="Only known exploited vulnerabilities (CISA KEV).")
    ] = False,
    show_suppressed: Annotated[
        bool, typer.Option("--show-suppressed", help="Also list findings VEX suppressed.")
    ] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when findings remain (after VEX and filters).")
    ] = False,
    output: OutputOpt = None,
    platform: ImagePlatformOpt = None,
) -> None:
    """Known vulnerabilities in IMAGE, with Debian's own verdicts, VEX applied."""
    from bastion.vuln import Severity, filter_result, load_config, load_sbom, require_database, scan_sbom

    if only_fixed and only_unfixed:
        raise typer.BadParameter("--only-fixed and --only-unfixed exclude each other")
    severities: set[Severity] = set()
    for word in (only_severity or "").split(","):
        if word.strip():
            try:
                severities.add(Severity(word.strip().lower()))
            except ValueError:
                raise typer.BadParameter(
                    f"unknown severity {word.strip()!r}", param_hint="--only-severity"
                ) from None
    ref = image_ref("cves", image)
    settings = Settings.from_env()
    from bastion.vex import repository_vex

    # Bastion's repository states what its packages' patches fix; the user's documents come after it,
    # so they win at equal times. Bad VEX is refused before the (slower) scan.
    ours = repository_vex(settings)
    documents = _load_vex(vex or [], first=len(ours))
    database = require_database(settings)
    result = scan_sbom(load_sbom(ref, settings, platform=platform), database,
                       max_age_hours=load_config(settings.home).max_age_hours)  # fmt: skip
    result = _apply_repository_vex(result, ours)
    if documents:
        from bastion.vex import apply_vex_counted

        result, uses = apply_vex_counted(result, documents)
        for path, use in zip(vex or [], uses, strict=True):
            # A statement that names nothing in this image suppresses nothing: say so, so that no
            # one takes a mistyped product (or another image's digest) for a working suppression.
            line = f"VEX {path}: {use.statements} statements, {use.applied} applied"
            if use.unused:
                line += f" ({use.unused} name no finding in {result.name})"
                warning(line)
            else:
                info(line)
    result = filter_result(
        result, only_fixed=only_fixed, only_unfixed=only_unfixed, severities=severities, only_kev=only_kev
    )
    for message in result.warnings:
        warning(message)
    _emit_result(result, output_format, output, show_suppressed)
    info(f"{len(result.findings)} findings, {len(result.suppressed)} suppressed by VEX in {result.name}")
    if exit_code and result.findings:
        raise FindingsFound(f"{len(result.findings)} findings remain after VEX and filters (--exit-code)")


def _apply_repository_vex(result: ScanResult, ours: list[tuple[Path, VexDocument]]) -> ScanResult:
    """Bastion's repository VEX applied, each finding it moved named on stderr: shown, not silently
    absent (the finding is in the report's suppressed list too)."""
    if not ours:
        return result
    from bastion.vex import apply_vex

    before = {(f.id, f.package.purl) for f in result.suppressed}
    result = apply_vex(result, [document for _, document in ours])
    for finding in result.suppressed:
        if (finding.id, finding.package.purl) not in before and finding.suppression is not None:
            info(f"{finding.id} in {finding.package.name} {finding.package.version}: fixed by Bastion's "
                 f"build ({finding.suppression.statement}; VEX {finding.suppression.document})")  # fmt: skip
    return result


def _load_vex(paths: list[Path], *, first: int = 0) -> list[VexDocument]:
    if not paths:
        return []
    from bastion.vex import load_vex

    return [load_vex(path, index=first + index) for index, path in enumerate(paths)]


def _emit_result(
    result: ScanResult, output_format: CvesFormat, output: Path | None, show_suppressed: bool
) -> None:
    from bastion.vuln import render_markdown, to_json, to_sarif

    if output_format is CvesFormat.table:
        if not to_stdout(output):
            raise typer.BadParameter("a table is for the terminal; use --format json, sarif or markdown")
        from bastion.cli._tables import findings_table

        table = findings_table(result, show_suppressed=show_suppressed)
        table.expand = stdout.is_terminal
        stdout.print(table)
        return
    if output_format is CvesFormat.json:
        data = to_json(result)
    elif output_format is CvesFormat.sarif:
        data = to_sarif(result)
    elif output_format is CvesFormat.markdown:
        data = render_markdown(result, show_suppressed=show_suppressed).encode()
    else:
        from bastion.vex import to_cyclonedx_vex

        data = to_cyclonedx_vex(result)
    emit(data, output)


def vex_command(
    image: ImageOrSbomArg,
    output: OutputOpt = None,
    platform: ImagePlatformOpt = None,
    author: Annotated[str, typer.Option("--author", help="The document's author.")] = "Bastion",
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            help="Include the VEX statements of this image definition (they replace what Bastion would "
            "state about their vulnerabilities).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    variant: Annotated[
        str, typer.Option("--variant", help="The definition's variant the image was built from.")
    ] = "runtime",
) -> None:
    """An OpenVEX v0.2.0 document for IMAGE: fixed, affected (with the action), under investigation, not affected."""
    from bastion.vex import generate_vex, repository_statements
    from bastion.vuln import load_sbom, require_database, scan_sbom

    ref = image_ref("vex", image)
    settings = Settings.from_env()
    # What the patches of Bastion's own packages fix (bastion source build), then the definition's.
    statements: list[VexStatementLike] = [*repository_statements(settings)]
    if definition is not None:
        from bastion.catalog import load_definition

        statements += load_definition(definition).variant(variant).vex
    database = require_database(settings)
    result = scan_sbom(load_sbom(ref, settings, platform=platform), database)
    timestamp = rfc3339()
    document = generate_vex(result, timestamp=timestamp, author=author, statements=statements)
    if document is None:
        info(f"nothing to state for {result.name}: no known vulnerabilities in its packages")
        return
    emit(json.dumps(document, indent=2).encode() + b"\n", output)
    info(f"{len(document['statements'])} statements for {result.name}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("cves")(cves_command)
    app.command("vex")(vex_command)
