"""``sbom://FILE``: an SPDX 2.3 or CycloneDX 1.6 JSON document read back into a
:class:`~bastion.sbom.Sbom`, so that ``bastion cves`` can scan an SBOM without the image.

Everything matching needs is in the purls Bastion writes (``bastion.sbom`` writers): the type, name and
version, ``arch``, ``distro=debian-12`` and ``upstream=<source>[@<source version>]`` for Debian
packages. The image is the document's root: SPDX ``SPDXRef-Image`` (the package the document
DESCRIBES), CycloneDX ``metadata.component``; its version is the manifest digest. Documents written by
other tools are read the same way: whatever has a purl is a package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packageurl import PackageURL

from bastion.documents import load_json
from bastion.errors import InputError
from bastion.sbom import Package, PackageType, Sbom

__all__ = ["read_sbom"]

_TYPES = {item.value: item for item in PackageType}


def _package(purl_text: str, where: str) -> Package | None:
    try:
        purl = PackageURL.from_string(purl_text)
    except ValueError as error:
        raise InputError(f"invalid package URL {purl_text!r:.200}: {error}", where=where) from None
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


# The shapes below are the specifications' (SPDX 2.3 JSON schema, CycloneDX 1.6 JSON schema): a field
# of another type is refused with its name, never read as something else.


def _objects(value: Any, field: str, where: str) -> list[dict[str, Any]]:
    """``value`` as a list of objects (``[]`` when absent)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError(f"{field} is not a list of objects", where=where)
    return value


def _object(value: Any, field: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{field} is not an object", where=where)
    return value


def _string(value: Any, field: str, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{field} is not a string", where=where)


def _spdx(document: dict[str, Any], where: str) -> Sbom:
    described = document.get("documentDescribes") or []
    if not isinstance(described, list) or not all(isinstance(item, str) for item in described):
        raise InputError("documentDescribes is not a list of strings", where=where)
    roots = set(described)
    for index, relation in enumerate(_objects(document.get("relationships"), "relationships", where)):
        if relation.get("relationshipType") == "DESCRIBES":
            roots.add(
                _string(
                    relation.get("relatedSpdxElement"), f"relationships[{index}].relatedSpdxElement", where
                )
            )
    root: dict[str, Any] = {}
    packages: list[Package] = []
    for index, item in enumerate(_objects(document.get("packages"), "packages", where)):
        field = f"packages[{index}]"
        purls = [
            _string(ref.get("referenceLocator"), f"{field}.externalRefs[{number}].referenceLocator", where)
            or ""
            for number, ref in enumerate(_objects(item.get("externalRefs"), f"{field}.externalRefs", where))
            if ref.get("referenceType") == "purl"
        ]
        ident = _string(item.get("SPDXID"), f"{field}.SPDXID", where)
        version = _string(item.get("versionInfo"), f"{field}.versionInfo", where)
        if ident in roots:
            root = {"item": item, "purl": purls[0] if purls else None}
            continue
        if item.get("primaryPackagePurpose") == "FILE" or not purls:
            continue
        package = _package(purls[0], f"{where}: {ident}")
        if package is not None:
            package.version = package.version or version or ""
            packages.append(package)
    info = root.get("item") or {}
    comment = _string(info.get("comment"), "the described package's comment", where) or ""
    version = info.get("versionInfo")
    created = _string(_object(document.get("creationInfo"), "creationInfo", where).get("created"),
                      "creationInfo.created", where)  # fmt: skip
    return Sbom(
        name=_string(document.get("name"), "name", where) or where,
        root_purl=root.get("purl"),
        platform=comment.removeprefix("platform ") if comment.startswith("platform ") else None,
        manifest_digest=version if isinstance(version, str) and version.startswith("sha256:") else None,
        packages=packages,
        created=created or Sbom.created,
        distro=_distro(packages),
    )


def _cyclonedx(document: dict[str, Any], where: str) -> Sbom:
    metadata = _object(document.get("metadata"), "metadata", where)
    root = _object(metadata.get("component"), "metadata.component", where)
    packages: list[Package] = []
    for index, item in enumerate(_objects(document.get("components"), "components", where)):
        purl = _string(item.get("purl"), f"components[{index}].purl", where)
        if item.get("type") == "file" or not purl:
            continue
        package = _package(purl, f"{where}: {item.get('bom-ref')!s:.200}")
        if package is not None:
            packages.append(package)
    properties = {
        p.get("name"): _string(p.get("value"), f"metadata.component.properties[{index}].value", where)
        for index, p in enumerate(_objects(root.get("properties"), "metadata.component.properties", where))
    }
    version = root.get("version")
    return Sbom(
        name=_string(root.get("name"), "metadata.component.name", where) or where,
        root_purl=_string(root.get("purl"), "metadata.component.purl", where),
        platform=properties.get("bastion:platform"),
        manifest_digest=version if isinstance(version, str) and version.startswith("sha256:") else None,
        packages=packages,
        created=_string(metadata.get("timestamp"), "metadata.timestamp", where) or Sbom.created,
        distro=_distro(packages),
    )


def read_sbom(path: Path) -> Sbom:
    """Read an SPDX 2.3 or CycloneDX 1.6 JSON file (recognised by content)."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", where=where) from None
    document = load_json(raw, where=where)
    if isinstance(document, dict) and str(document.get("spdxVersion", "")).startswith("SPDX-2."):
        return _spdx(document, where)
    if isinstance(document, dict) and document.get("bomFormat") == "CycloneDX":
        return _cyclonedx(document, where)
    raise InputError("not an SPDX 2.x or CycloneDX JSON document", where=where)
