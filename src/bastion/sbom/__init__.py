"""Software bills of materials: catalogers that find packages in an image, and SPDX 2.3 / CycloneDX 1.6
writers."""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

# Loaded on first use (PEP 562, bastion._lazy): cyclonedx-python-lib and spdx-tools (with beartype) are
# slow to import and only the commands writing those formats need them (not `bastion cves`); the
# comparison and the terminal table (rich) are for the commands that print them (docs/benchmarks.md);
# the catalogers, for what scans: a build looks up the proof producers here on every run, and a no-op
# rebuild scans nothing.
if TYPE_CHECKING:
    from bastion.sbom._compare import (
        Change,
        Comparison,
        PackageKey,
        compare,
        render_comparison_markdown,
        render_comparison_text,
    )
    from bastion.sbom._cyclonedx import to_cyclonedx
    from bastion.sbom._embedded import EMBEDDED_SBOM_PATH, complete_from_embedded
    from bastion.sbom._licenses import parse_copyright
    from bastion.sbom._model import License, Location, Package, PackageType, Sbom, SbomFile
    from bastion.sbom._proofs import CYCLONEDX_PRODUCER, SBOM, SPDX_PRODUCER
    from bastion.sbom._scan import image_purl, scan, scan_image
    from bastion.sbom._spdx import to_spdx
    from bastion.sbom._table import TABLE_COLUMNS, table_rows

__getattr__ = lazy_attributes(__name__)


__all__ = [
    "CYCLONEDX_PRODUCER",
    "EMBEDDED_SBOM_PATH",
    "SBOM",
    "SPDX_PRODUCER",
    "TABLE_COLUMNS",
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
    "scan",
    "scan_image",
    "table_rows",
    "to_cyclonedx",
    "to_spdx",
]
