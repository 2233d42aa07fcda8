"""Software bills of materials: catalogers that find packages in an image, and SPDX 2.3 / CycloneDX 1.6
writers."""

from bastion.sbom._compare import (
    Change,
    Comparison,
    PackageKey,
    compare,
    render_comparison_markdown,
    render_comparison_text,
)
from bastion.sbom._cyclonedx import to_cyclonedx
from bastion.sbom._licenses import parse_copyright
from bastion.sbom._model import License, Location, Package, PackageType, Sbom, SbomFile
from bastion.sbom._scan import scan
from bastion.sbom._spdx import to_spdx
from bastion.sbom._table import render_table

__all__ = [
    "Change",
    "Comparison",
    "License",
    "Location",
    "Package",
    "PackageKey",
    "PackageType",
    "Sbom",
    "SbomFile",
    "compare",
    "parse_copyright",
    "render_comparison_markdown",
    "render_comparison_text",
    "render_table",
    "scan",
    "to_cyclonedx",
    "to_spdx",
]
