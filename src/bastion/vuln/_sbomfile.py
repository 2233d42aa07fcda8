"""``sbom://FILE``: an SPDX 2.3 or CycloneDX 1.6 JSON document read back into a
:class:`~bastion.sbom.Sbom`, so that ``bastion cves`` can scan an SBOM without the image.

Everything matching needs is in the purls Bastion writes (``bastion.sbom`` writers): the type, name and
version, ``arch``, ``distro=debian-12`` and ``upstream=<source>[@<source version>]`` for Debian
packages. The image is the document's root: SPDX ``SPDXRef-Image`` (the package the document
DESCRIBES), CycloneDX ``metadata.component``; its version is the manifest digest. Documents written by
other tools are read the same way: whatever has a purl is a package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from bastion.errors import InputError
from bastion.sbom import Package, PackageType, Sbom

__all__ = ["read_sbom"]

_TYPES = {item.value: item for item in PackageType}


def _package(purl_text: str, where: str) -> Package | None:
    try:
        purl = PackageURL.from_string(purl_text)
    except ValueError as error:
        raise InputError(f"invalid package URL {purl_text!r}: {error}", where=where) from None
    kind = _TYPES.get(purl.type, PackageType.GENERIC)
    if kind is PackageType.OCI:
        return None
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    version = purl.version or ""
    source_name = source_version = None
    if kind is PackageType.DEB:
        upstream = qualifiers.get("upstream", "")
        source_name, _, source_version = upstream.partition("@") if upstream else (purl.name, "", version)
        source_version = source_version or version
    return Package(
        type=kind,
        name=purl.name,
        version=version,
        purl=purl_text,
        namespace=purl.namespace,
        architecture=qualifiers.get("arch"),
        source_name=source_name,
        source_version=source_version,
        found_by="sbom",
    )


def _distro(packages: list[Package]) -> str | None:
    for package in packages:
        if package.type is PackageType.DEB:
            qualifiers = PackageURL.from_string(package.purl).qualifiers
            if isinstance(qualifiers, dict) and qualifiers.get("distro"):
                return str(qualifiers["distro"])
    return None


def _spdx(document: dict[str, Any], where: str) -> Sbom:
    described = set(document.get("documentDescribes") or [])
    for relation in document.get("relationships") or []:
        if relation.get("relationshipType") == "DESCRIBES":
            described.add(relation.get("relatedSpdxElement"))
    root: dict[str, Any] = {}
    packages: list[Package] = []
    for item in document.get("packages") or []:
        purls = [
            ref.get("referenceLocator", "")
            for ref in item.get("externalRefs") or []
            if ref.get("referenceType") == "purl"
        ]
        if item.get("SPDXID") in described:
            root = {"item": item, "purl": purls[0] if purls else None}
            continue
        if item.get("primaryPackagePurpose") == "FILE" or not purls:
            continue
        package = _package(purls[0], f"{where}: {item.get('SPDXID')}")
        if package is not None:
            package.version = package.version or str(item.get("versionInfo") or "")
            packages.append(package)
    info = root.get("item") or {}
    comment = str(info.get("comment") or "")
    version = info.get("versionInfo")
    return Sbom(
        name=str(document.get("name") or where),
        root_purl=root.get("purl"),
        platform=comment.removeprefix("platform ") if comment.startswith("platform ") else None,
        manifest_digest=version if isinstance(version, str) and version.startswith("sha256:") else None,
        packages=packages,
        created=str((document.get("creationInfo") or {}).get("created") or Sbom.created),
        distro=_distro(packages),
    )


def _cyclonedx(document: dict[str, Any], where: str) -> Sbom:
    metadata = document.get("metadata") or {}
    root = metadata.get("component") or {}
    packages: list[Package] = []
    for item in document.get("components") or []:
        if item.get("type") == "file" or not item.get("purl"):
            continue
        package = _package(str(item["purl"]), f"{where}: {item.get('bom-ref')}")
        if package is not None:
            packages.append(package)
    properties = {p.get("name"): p.get("value") for p in root.get("properties") or []}
    version = root.get("version")
    return Sbom(
        name=str(root.get("name") or where),
        root_purl=root.get("purl"),
        platform=properties.get("bastion:platform"),
        manifest_digest=version if isinstance(version, str) and version.startswith("sha256:") else None,
        packages=packages,
        created=str(metadata.get("timestamp") or Sbom.created),
        distro=_distro(packages),
    )


def read_sbom(path: Path) -> Sbom:
    """Read an SPDX 2.3 or CycloneDX 1.6 JSON file (recognised by content)."""
    where = str(path)
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=where) from None
    except ValueError as error:
        raise InputError(f"not JSON: {error}", where=where) from None
    if isinstance(document, dict) and str(document.get("spdxVersion", "")).startswith("SPDX-2."):
        return _spdx(document, where)
    if isinstance(document, dict) and document.get("bomFormat") == "CycloneDX":
        return _cyclonedx(document, where)
    raise InputError("not an SPDX 2.x or CycloneDX JSON document", where=where)
