"""``bastion compliance``: evaluate a compliance profile on an image and report it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from bastion.cli._console import info, stdout
from bastion.cli._options import ImageArg, image_ref
from bastion.cli._output import OutputOpt, emit, to_stdout
from bastion.config import Settings
from bastion.errors import InputError

if TYPE_CHECKING:
    # Imported inside the command: the rules engine takes a few tenths of a second to load, which no
    # other command should pay.
    from bastion.compliance import ComplianceResult


class ComplianceFormat(StrEnum):
    summary = "summary"
    xccdf = "xccdf"
    html = "html"
    json = "json"


def _print_summary(result: ComplianceResult) -> None:
    from bastion.compliance import Result, summary

    styles = {Result.PASS: "green", Result.FAIL: "bold red", Result.ERROR: "bold red"}
    table = Table("result", "severity", "rule", "message", box=None)
    for item in result.results:
        word = Text(item.result.value, style=styles.get(item.result, "dim"))
        if item.override is not None:
            word = Text("waived", style="yellow") + Text(
                f" ({item.result.value}; check: {item.override.old_result.value})"
            )
        table.add_row(word, item.severity.value, item.rule.name, Text(item.message))
    stdout.print(f"{result.target.name} {result.target.manifest_digest or ''}", markup=False)
    stdout.print(
        f"profile {result.profile.name} {result.profile.version}: {result.profile.title}", markup=False
    )
    stdout.print(table)
    for item in result.failed:
        stdout.print(f"\n{item.rule.name}: {item.message}", markup=False)
        for evidence in item.evidence:
            stdout.print(f"  {evidence}", markup=False)
    for item in result.waived:
        assert item.override is not None  # what ``waived`` selects
        change = item.override
        stdout.print(
            f"\n{item.rule.name}: {change.old_result.value} waived by {change.authority}: {change.remark}",
            markup=False,
        )
    if result.waiver_source:
        stdout.print(f"\n{result.waiver_source}", markup=False)
    stdout.print(f"\n{summary(result).line()}", markup=False)


def compliance(
    image: ImageArg,
    profile: Annotated[
        str, typer.Option("--profile", help="A built-in profile name (default) or a profile YAML file.")
    ] = "default",
    output_format: Annotated[
        ComplianceFormat,
        typer.Option("--format", help="summary (a table), xccdf (XCCDF 1.2), html, or json (every rule)."),
    ] = ComplianceFormat.summary,
    output: OutputOpt = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit with code 1 when a rule fails or cannot be evaluated.")
    ] = False,
    platform: Annotated[
        str | None, typer.Option("--platform", help="The platform to evaluate in a multi-platform image.")
    ] = None,
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            help="Apply the compliance waivers of this image definition (of the variant the image's "
            "dev.bastion.variant label names, else runtime), as the build does. Without it, the "
            "waivers of the image's compliance attestation apply when it verifies.",
        ),
    ] = None,
    key: Annotated[
        list[Path] | None,
        typer.Option(
            "--key",
            help="A public key (PEM) trusted to have signed the image's compliance attestation; "
            "repeatable. BASTION_HOME/keys/bastion.pub, the local build key, is trusted too.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Evaluate a compliance profile (STIG- and CIS-style rules) on IMAGE."""
    import dataclasses

    from bastion.compliance import (
        apply_waivers,
        attested_waivers,
        require_passed,
        summary,
        to_html,
        to_json,
        to_xccdf,
    )
    from bastion.compliance import compliance as evaluate
    from bastion.image import open_target

    ref = image_ref("compliance", image)
    settings = Settings.from_env()
    keys = _trusted_keys(key or [], settings)
    with open_target(ref, settings, platform=platform) as target:
        result = evaluate(target, profile)
    if definition is not None:
        from bastion.catalog import load_definition

        variant = load_definition(definition).variant(result.target.variant or "runtime")
        result, _ = apply_waivers(
            result, variant.compliance.waivers, spec=profile, authority=f"image definition {definition}"
        )
        result = dataclasses.replace(result, waiver_source=f"waivers from the image definition {definition}")
    else:
        attested = attested_waivers(
            ref, settings, manifest_digest=result.target.manifest_digest, profile=result.profile, keys=keys
        )
        for note in attested.notes:
            info(note)
        if attested.source is not None:
            result, _ = apply_waivers(result, attested.waivers, spec=profile)
            result = dataclasses.replace(result, waiver_source=attested.source)
            info(attested.source)
    if output_format is ComplianceFormat.summary and to_stdout(output):
        _print_summary(result)
    else:
        data = {
            ComplianceFormat.summary: lambda: summary(result).line().encode() + b"\n",
            ComplianceFormat.xccdf: lambda: to_xccdf(result),
            ComplianceFormat.html: lambda: to_html(result),
            ComplianceFormat.json: lambda: to_json(result).encode(),
        }[output_format]()
        emit(data, output)
        info(summary(result).line())
    if exit_code:
        require_passed(result)


def _trusted_keys(given: list[Path], settings: Settings) -> list[Path]:
    from bastion.attest import local_key_path

    for path in given:
        if not path.is_file():
            raise InputError("no such public key file", where=str(path))
    local = local_key_path(settings.home).with_suffix(".pub")
    return [*given, *([local] if local.is_file() and local not in given else [])]


def register(app: typer.Typer) -> None:
    app.command("compliance")(compliance)
