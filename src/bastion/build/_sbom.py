"""The build-time SBOM: what the build put into a platform image, exactly, from the build record.

The assembled tree is scanned with the same catalogers ``bastion sbom`` uses (so both agree on what a
package is), then completed from what only the build knows: each Debian package's ``.deb`` SHA256 and
download location from the lock, and every file Bastion wrote itself with where its content came
from. A copy in SPDX 2.3 is written into the image at :data:`bastion.sbom.EMBEDDED_SBOM_PATH`.

An image cannot contain its own digest, so the embedded document names the image by repository,
tag and architecture (``pkg:oci/python?arch=amd64&repository_url=bastion/python&tag=3.11``);
``bastion sbom`` on the built image gives the same packages with the digest as root.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from bastion.build._assemble import Rootfs
from bastion.image import FileInfo, FileKind, ImageTarget
from bastion.lock import LockedPlatform
from bastion.oci import rfc3339
from bastion.sbom import EMBEDDED_SBOM_PATH, Package, PackageType, Sbom, SbomFile, scan

_KINDS = {
    "file": FileKind.FILE,
    "dir": FileKind.DIRECTORY,
    "symlink": FileKind.SYMLINK,
    "hardlink": FileKind.HARDLINK,
}


def tree_target(rootfs: Rootfs, *, name: str, platform: str, config: dict[str, Any]) -> ImageTarget:
    """The assembled tree as scanners see an image: owners and modes as the layers will record
    them, no layers yet, no digest."""
    files = {
        "/" + path: FileInfo(
            path="/" + path,
            kind=_KINDS[node.entry.kind],
            mode=node.entry.mode,
            uid=node.entry.uid,
            gid=node.entry.gid,
            size=node.entry.source.stat().st_size if node.entry.kind == "file" and node.entry.source else 0,
            link_target=node.entry.linkname or None,
        )
        for path, node in rootfs.nodes.items()
    }
    repository, _, tag = name.rpartition(":")
    return ImageTarget(
        name=name,
        root=rootfs.root,
        files=files,
        platform=platform,
        config=config,
        repository=repository,
        tag=tag,
    )


def build_sbom(
    rootfs: Rootfs, locked: LockedPlatform, *, repository: str, tag: str, platform: str, epoch: int
) -> Sbom:
    """The SBOM of an assembled tree; see the module docstring."""
    target = tree_target(
        rootfs, name=f"{repository}:{tag}", platform=platform, config={"created": rfc3339(epoch)}
    )
    sbom = scan(target)
    arch = platform.split("/")[1]
    sbom.root_purl = PackageURL(
        "oci",
        None,
        repository.rsplit("/", 1)[-1],
        None,
        {"arch": arch, "repository_url": repository, "tag": tag},
    ).to_string()
    by_key = {(p.name, p.architecture): p for p in locked.packages}
    for package in sbom.packages:
        if package.type is PackageType.DEB and (
            entry := by_key.get((package.name, package.architecture or ""))
        ):
            package.sha256 = entry.sha256
            package.download_location = entry.url
    sbom.files = [
        _sbom_file(rootfs.root, path, origin)
        for path, origin in sorted(rootfs.origins.items())
        if path in rootfs.nodes and rootfs.nodes[path].entry.kind == "file"
    ]
    return sbom


def embedded_copy(sbom: Sbom) -> Sbom:
    """The SBOM as embedded in the image: licence texts that are a Debian package's copyright file
    are not copied into it (they are most of an SBOM's bytes, and the image already holds each file);
    the document says where the text is instead. The attested SBOM keeps every text."""
    packages = []
    for package in sbom.packages:
        copyright_file = f"/usr/share/doc/{package.name}/copyright"
        if package.type is PackageType.DEB and package.licenses and copyright_file in sbom_paths(package):
            licenses = [
                replace(lic, text=f"The text is in {copyright_file} of this image.") if lic.text else lic
                for lic in package.licenses
            ]
            packages.append(replace(package, licenses=licenses))
        else:
            packages.append(package)
    return replace(sbom, packages=packages)


def sbom_paths(package: Package) -> set[str]:
    return set(package.files) | {loc.path for loc in package.locations}


def embedded_path() -> str:
    """Where the SPDX copy lies, root-relative as the assembler names paths."""
    return EMBEDDED_SBOM_PATH.lstrip("/")


def _sbom_file(root: Path, path: str, origin: str) -> SbomFile:
    data = (root / path).read_bytes()
    return SbomFile(
        "/" + path,
        hashlib.sha256(data).hexdigest(),
        origin,
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
    )
