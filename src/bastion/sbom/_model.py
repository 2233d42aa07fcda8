"""The SBOM model every cataloger fills and every writer reads.

One :class:`Package` per software component found, whatever its ecosystem; writers turn a
:class:`Sbom` into SPDX 2.3 or CycloneDX 1.6. Everything is ordered and deterministic: the same image
gives the same :class:`Sbom`, and so the same bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PackageType(enum.StrEnum):
    """Ecosystem, named as purl types name them (package-url spec, ``PURL-TYPES.rst``)."""

    DEB = "deb"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"
    APK = "apk"
    OCI = "oci"
    GENERIC = "generic"


@dataclass(frozen=True, order=True)
class Location:
    """Where a package was found: the image path of the evidence (a status file, a METADATA file,
    a binary, a jar) and the layer that holds it (index and digest; ``None`` for ``fs://``)."""

    path: str
    layer_digest: str | None = None
    layer_index: int | None = None


@dataclass(frozen=True)
class License:
    """A licence as found. ``expression`` is a valid SPDX licence expression when we could make one
    (``MIT``, ``GPL-2.0-or-later OR Artistic-1.0``, ``LicenseRef-...``); ``text`` keeps free text
    that became a ``LicenseRef-`` so that writers can include it (SPDX ``hasExtractedLicensingInfos``)."""

    expression: str
    text: str | None = None
    name: str | None = None  # the human name for a LicenseRef


@dataclass
class Package:
    type: PackageType
    name: str
    version: str
    purl: str
    namespace: str | None = None  # maven group, npm scope (without @), golang module path prefix
    architecture: str | None = None
    source_name: str | None = None  # Debian source package
    source_version: str | None = None
    supplier: str | None = None  # e.g. Debian Maintainer: "Name <mail>"
    homepage: str | None = None
    description: str | None = None
    licenses: list[License] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # image paths owned by the package, where known
    sha256: str | None = None  # of the artifact it was installed from (.deb), where known
    download_location: str | None = None
    depends: list[str] = field(default_factory=list)  # bom-refs (:attr:`ref`) of packages it depends on
    found_by: str = ""  # cataloger name: "dpkg-status.d", "python-dist-info", ...
    origin: str | None = None  # for files Bastion wrote itself: where they came from

    @property
    def ref(self) -> str:
        """A stable identifier inside one SBOM (the purl; purls are unique per package and location)."""
        return self.purl


@dataclass
class Sbom:
    """Everything known about one platform image (or directory)."""

    name: str  # image name or directory
    root_purl: str | None  # ``pkg:oci/python@sha256:...?repository_url=...&arch=amd64``; None for fs://
    platform: str | None
    manifest_digest: str | None
    packages: list[Package] = field(default_factory=list)
    created: str = "1970-01-01T00:00:00Z"  # RFC 3339; the image's created time, so output is stable
    tool_version: str = ""
    distro: str | None = None  # ``debian-12``, from the image's os-release (purl ``distro`` qualifier)
    files: list[SbomFile] = field(default_factory=list)  # files Bastion wrote (passwd, CA bundle, ...)
    index_digest: str | None = None  # the index the platform manifest was chosen from, when there was one


@dataclass(frozen=True)
class SbomFile:
    """A file no package owns that Bastion itself wrote into the image, with where its content came
    from (``/etc/ssl/certs/ca-certificates.crt``: "concatenation of /usr/share/ca-certificates/**")."""

    path: str
    sha256: str
    origin: str
    # SPDX 2.3 clause 8.4 requires a SHA1 checksum for every file; without it, the SPDX writer can only
    # describe the file as a package of purpose FILE.
    sha1: str | None = None
