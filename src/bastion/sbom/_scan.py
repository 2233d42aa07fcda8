"""Scanning an opened image into a :class:`~bastion.sbom.Sbom`: every cataloger, the ownership rule,
duplicates merged, a deterministic order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from packageurl import PackageURL

from bastion import __version__
from bastion.config import Settings
from bastion.image import ImageTarget, open_target
from bastion.sbom._catalog import CATALOGERS, Cataloger, drop_owned, os_release
from bastion.sbom._model import Package, Sbom

if TYPE_CHECKING:
    from bastion.oci import ImageRef

__all__ = ["image_purl", "scan", "scan_image"]


def scan(target: ImageTarget, *, catalogers: Sequence[Cataloger] = CATALOGERS) -> Sbom:
    """The SBOM of ``target``: packages sorted by (type, name, version, first location).

    Packages with the same purl (a Go module built into two binaries, one jar in two places) are
    one package with every location, since the purl is the package's reference in the SBOM.
    """
    found: list[Package] = []
    for cataloger in catalogers:
        found += cataloger.catalog(target)
    packages = _merge(drop_owned(found))
    packages.sort(key=lambda p: (str(p.type), p.name, p.version, p.locations[0].path if p.locations else ""))
    release = os_release(target)
    created = target.config.get("created")
    return Sbom(
        name=target.name,
        root_purl=_root_purl(target),
        platform=target.platform,
        manifest_digest=target.manifest_digest,
        index_digest=target.index_digest,
        packages=packages,
        created=created if isinstance(created, str) and created else Sbom.created,
        tool_version=__version__,
        distro=release.distro if release else None,
    )


def _merge(packages: list[Package]) -> list[Package]:
    by_purl: dict[str, Package] = {}
    for package in packages:
        first = by_purl.setdefault(package.purl, package)
        if first is package:
            continue
        first.locations = sorted({*first.locations, *package.locations})
        first.files = sorted({*first.files, *package.files})
        first.depends = [*first.depends, *(d for d in package.depends if d not in first.depends)]
    for package in by_purl.values():
        package.locations = sorted(set(package.locations))
    return list(by_purl.values())


def _root_purl(target: ImageTarget) -> str | None:
    if target.manifest_digest is None or not target.repository:
        return None
    return image_purl(target.repository, target.manifest_digest, target.platform)


def image_purl(repository: str, digest: str, platform: str | None) -> str:
    """``pkg:oci/<name>@<manifest digest>?arch=<arch>&repository_url=<repository>`` (purl spec,
    ``oci`` type)."""
    qualifiers = {"repository_url": repository}
    if platform:
        qualifiers["arch"] = platform.split("/")[1]
    return PackageURL("oci", None, repository.rsplit("/", 1)[-1], digest, qualifiers).to_string()


def scan_image(reference: str | ImageRef, settings: Settings, *, platform: str | None = None) -> Sbom:
    """Open the image ``reference`` names (:func:`bastion.oci.parse_image_ref`: a store name,
    ``oci-dir://``, ``docker-archive://``, ``fs://`` or a registry reference), scan it, and complete the result from the SBOM a Bastion build embedded in it."""
    from bastion.sbom._embedded import complete_from_embedded

    with open_target(reference, settings, platform=platform) as target:
        target.derived_cache = settings.cache_dir
        sbom = scan(target)
        complete_from_embedded(sbom, target)
    return sbom
