"""Software bills of materials: catalogers that find packages in an image, and SPDX 2.3 / CycloneDX 1.6
writers."""

from bastion.sbom._model import License, Location, Package, PackageType, Sbom, SbomFile

__all__ = ["License", "Location", "Package", "PackageType", "Sbom", "SbomFile"]
