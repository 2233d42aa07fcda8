"""Software bills of materials: catalogers that find packages in an image, and SPDX 2.3 / CycloneDX 1.6
writers."""

from typing import TYPE_CHECKING, Any

from bastion.sbom._compare import (
    Change,
    Comparison,
    PackageKey,
    compare,
    render_comparison_markdown,
    render_comparison_text,
)
from bastion.sbom._embedded import EMBEDDED_SBOM_PATH, complete_from_embedded
from bastion.sbom._licenses import parse_copyright
from bastion.sbom._model import License, Location, Package, PackageType, Sbom, SbomFile
from bastion.sbom._scan import image_purl, scan, scan_image
from bastion.sbom._spdx import to_spdx
from bastion.sbom._table import render_table

if TYPE_CHECKING:
    from bastion.sbom._cyclonedx import to_cyclonedx


def __getattr__(name: str) -> Any:
    # cyclonedx-python-lib takes ~0.3 s to import: only the commands that write CycloneDX pay for it
    # (PEP 562 module __getattr__).
    if name == "to_cyclonedx":
        from bastion.sbom._cyclonedx import to_cyclonedx

        return to_cyclonedx
    raise AttributeError(f"module 'bastion.sbom' has no attribute {name!r}")


__all__ = [
    "EMBEDDED_SBOM_PATH",
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
    "complete_from_embedded",
    "image_purl",
    "parse_copyright",
    "render_comparison_markdown",
    "render_comparison_text",
    "render_table",
    "scan",
    "scan_image",
    "to_cyclonedx",
    "to_spdx",
]
