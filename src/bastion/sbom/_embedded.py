"""The SPDX SBOM a Bastion build embeds in each image, read back when the image is scanned.

The build knows what no scan can see: the SHA256 and download location of each ``.deb``, and where
each file Bastion generated came from. It writes that into the image at :data:`EMBEDDED_SBOM_PATH`;
``bastion sbom`` on any copy of the image (store, layout, archive, directory) reads it back and
completes the scan's packages with it, matching them by purl.
"""

from __future__ import annotations

import hashlib
from typing import Any

from packageurl import PackageURL

from bastion.documents import load_json
from bastion.errors import InputError
from bastion.image import ImageTarget
from bastion.sbom._model import Sbom, SbomFile

EMBEDDED_SBOM_PATH = "/usr/share/bastion/sbom.spdx.json"

_ORIGIN = "the build-time SPDX SBOM written by Bastion"


def complete_from_embedded(sbom: Sbom, target: ImageTarget) -> bool:
    """Add the embedded SBOM's build facts to ``sbom`` (in place); False when there is none.

    Only facts about packages the scan itself found are taken: the embedded document cannot add or
    remove a package, so a tampered copy can at worst mislabel a checksum, never hide software.
    """
    try:
        data = target.read(EMBEDDED_SBOM_PATH)
    except FileNotFoundError:
        return False
    try:
        # The image's own file, so bounded like any document from outside (a copy nested 200,000
        # levels deep stopped json.loads with RecursionError); one that does not parse is not used.
        document = load_json(data, where=EMBEDDED_SBOM_PATH)
    except InputError:
        return False
    if not isinstance(document, dict) or not str(document.get("spdxVersion", "")).startswith("SPDX-"):
        return False
    facts = {purl: package for package in _list(document, "packages") if (purl := _purl(package))}
    for package in sbom.packages:
        canonical = _canonical(package.purl)
        known = facts.get(canonical) if canonical else None
        if known is None:
            continue
        location = known.get("downloadLocation")
        if (
            isinstance(location, str)
            and location not in ("NOASSERTION", "NONE")
            and not package.download_location
        ):
            package.download_location = location
        for checksum in _list(known, "checksums"):
            if checksum.get("algorithm") == "SHA256" and not package.sha256:
                package.sha256 = str(checksum.get("checksumValue", "")) or None
    files = {item.path: item for item in sbom.files}
    for entry in _list(document, "files"):
        path = "/" + str(entry.get("fileName", "")).removeprefix("./").lstrip("/")
        sums = {c.get("algorithm"): str(c.get("checksumValue", "")) for c in _list(entry, "checksums")}
        if path != "/" and "SHA256" in sums and path not in files:
            files[path] = SbomFile(path, sums["SHA256"], str(entry.get("comment", "")), sha1=sums.get("SHA1"))
    files[EMBEDDED_SBOM_PATH] = SbomFile(
        EMBEDDED_SBOM_PATH,
        hashlib.sha256(data).hexdigest(),
        _ORIGIN,
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
    )
    sbom.files = [files[path] for path in sorted(files)]
    return True


def _list(node: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = node.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _purl(package: dict[str, Any]) -> str | None:
    for ref in _list(package, "externalRefs"):
        if ref.get("referenceType") == "purl":
            return _canonical(str(ref.get("referenceLocator")))
    return None


def _canonical(purl: str) -> str | None:
    try:
        return PackageURL.from_string(purl).to_string()
    except ValueError:
        return None
