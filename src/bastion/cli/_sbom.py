"""``bastion sbom`` and ``bastion compare``: what is in an image, and what changed between two."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from bastion.cli._console import info, stdout
from bastion.cli._options import ImageArg, ImagePlatformOpt, image_ref
from bastion.cli._output import OutputOpt, emit, to_stdout
from bastion.config import Settings


class SbomFormat(StrEnum):
    spdx_json = "spdx-json"
    cyclonedx_json = "cyclonedx-json"
    table = "table"


class CompareFormat(StrEnum):
    text = "text"
    markdown = "markdown"


def sbom_command(
    image: ImageArg,
    output_format: Annotated[SbomFormat, typer.Option("--format", help="Output format.")] = SbomFormat.table,
    output: OutputOpt = None,
    platform: ImagePlatformOpt = None,
) -> None:
    """List every package in IMAGE (Debian, Python, npm, Go, Java, Alpine) as SPDX 2.3, CycloneDX 1.6 or a table."""
    from bastion import sbom as sboms

    sbom = sboms.scan_image(image_ref("sbom", image), Settings.from_env(), platform=platform)
    if output_format is SbomFormat.table:
        if not to_stdout(output):
            raise typer.BadParameter("a table is for the terminal; use --format spdx-json or cyclonedx-json")
        from bastion.cli._tables import sbom_table

        table = sbom_table(sbom)
        table.expand = stdout.is_terminal  # piped: natural widths, no padding to the 1000-column console
        stdout.print(table)
        return
    # Attribute access, so that only the writer asked for is imported (bastion.sbom.__getattr__).
    data = sboms.to_spdx(sbom) if output_format is SbomFormat.spdx_json else sboms.to_cyclonedx(sbom)
    emit(data, output, line_on_stdout=True)
    info(f"{len(sbom.packages)} packages in {sbom.name}" + (f" ({sbom.platform})" if sbom.platform else ""))


def compare_command(
    before: ImageArg,
    after: ImageArg,
    output_format: Annotated[
        CompareFormat, typer.Option("--format", help="Output format.")
    ] = CompareFormat.text,
    platform: ImagePlatformOpt = None,
) -> None:
    """Packages added, removed and changed from BEFORE to AFTER."""
    from bastion.sbom import compare, render_comparison_markdown, render_comparison_text, scan_image

    settings = Settings.from_env()
    first, second = image_ref("compare", before), image_ref("compare", after)
    comparison = compare(
        scan_image(first, settings, platform=platform), scan_image(second, settings, platform=platform)
    )
    render = render_comparison_markdown if output_format is CompareFormat.markdown else render_comparison_text
    emit(render(comparison).encode(), None, line_on_stdout=True)


def register(app: typer.Typer) -> None:
    app.command("sbom")(sbom_command)
    app.command("compare")(compare_command)
