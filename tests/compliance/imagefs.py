"""Image targets for the compliance tests, made without ``bastion.image.open_target``: from an exported
OCI layout (owners and modes as the layer tar headers record them) or from a directory (owners and
modes from ``lstat``, which a test may override to plant what an unprivileged test cannot create)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bastion.image import FileInfo, FileKind, ImageTarget, LayerInfo

_KINDS = {
    tarfile.REGTYPE: FileKind.FILE,
    tarfile.AREGTYPE: FileKind.FILE,
    tarfile.DIRTYPE: FileKind.DIRECTORY,
    tarfile.SYMTYPE: FileKind.SYMLINK,
    tarfile.LNKTYPE: FileKind.HARDLINK,
    tarfile.CHRTYPE: FileKind.CHAR_DEVICE,
    tarfile.BLKTYPE: FileKind.BLOCK_DEVICE,
    tarfile.FIFOTYPE: FileKind.FIFO,
}
_XATTR = "SCHILY.xattr."


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hexdigest


def _norm(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def target_from_oci_dir(layout: Path, root: Path, *, name: str) -> ImageTarget:
    """The one image of an ``oci-dir`` export (one platform), layers applied in order into ``root``."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    manifest = json.loads(_blob(layout, entry["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
    files: dict[str, FileInfo] = {}
    root.mkdir(parents=True, exist_ok=True)
    layers = []
    for number, layer in enumerate(manifest["layers"]):
        layers.append(LayerInfo(layer["digest"], None, layer["mediaType"], layer["size"]))
        with tarfile.open(_blob(layout, layer["digest"]), "r:*") as tar:
            for member in tar:
                path = _norm(member.name)
                base = path.rsplit("/", 1)[-1]
                parent = path.rsplit("/", 1)[0] or "/"
                if base == ".wh..wh..opq":
                    for old in [p for p in files if p.startswith(parent.rstrip("/") + "/")]:
                        del files[old]
                    continue
                if base.startswith(".wh."):
                    gone = (parent.rstrip("/") + "/" + base[4:]) if parent != "/" else "/" + base[4:]
                    for old in [p for p in files if p == gone or p.startswith(gone + "/")]:
                        del files[old]
                    shutil.rmtree(root / gone.lstrip("/"), ignore_errors=True)
                    continue
                xattrs = {
                    key.removeprefix(_XATTR): value.encode("utf-8", "surrogateescape")
                    for key, value in member.pax_headers.items()
                    if key.startswith(_XATTR)
                }
                kind = _KINDS[member.type]
                link = member.linkname or None
                if kind is FileKind.HARDLINK and link is not None:
                    link = _norm(link)
                files[path] = FileInfo(
                    path,
                    kind,
                    member.mode & 0o7777,
                    member.uid,
                    member.gid,
                    member.size,
                    link,
                    number,
                    xattrs,
                )
                host = root / path.lstrip("/")
                if kind is FileKind.DIRECTORY:
                    host.mkdir(parents=True, exist_ok=True)
                    continue
                host.parent.mkdir(parents=True, exist_ok=True)
                if host.is_symlink() or host.is_file():
                    host.unlink()
                if kind is FileKind.FILE:
                    source = tar.extractfile(member)
                    assert source is not None
                    with source, host.open("wb") as out:
                        shutil.copyfileobj(source, out)
                elif kind is FileKind.SYMLINK:
                    host.symlink_to(member.linkname)
                elif kind is FileKind.HARDLINK and link is not None:
                    shutil.copyfile(root / link.lstrip("/"), host)
    return ImageTarget(
        name=name,
        root=root,
        files=files,
        layers=tuple(layers),
        manifest_digest=entry["digest"],
        platform=f"{config.get('os')}/{config.get('architecture')}",
        config=config,
    )


def target_from_dir(
    root: Path,
    *,
    config: Mapping[str, Any] | None = None,
    name: str = "crafted:test",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    digest: str | None = None,
) -> ImageTarget:
    """A target over a directory: every path under ``root`` with owners and modes from ``lstat``,
    then ``overrides`` (path → FileInfo field values) applied on top."""
    files: dict[str, FileInfo] = {"/": FileInfo("/", FileKind.DIRECTORY, 0o755, 0, 0, 0)}
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in [*dirnames, *filenames]:
            host = Path(dirpath) / entry
            st = host.lstat()
            path = "/" + host.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                kind, link = FileKind.SYMLINK, os.readlink(host)
            elif stat.S_ISDIR(st.st_mode):
                kind, link = FileKind.DIRECTORY, None
            else:
                kind, link = FileKind.FILE, None
            files[path] = FileInfo(path, kind, stat.S_IMODE(st.st_mode), 0, 0, st.st_size, link)
    for path, changes in (overrides or {}).items():
        old = files.get(path) or FileInfo(path, FileKind.FILE, 0o644, 0, 0, 0)
        files[path] = FileInfo(**{**old.__dict__, **changes})
    return ImageTarget(
        name=name,
        root=root,
        files=files,
        manifest_digest=digest,
        platform="linux/amd64",
        config={"architecture": "amd64", "os": "linux", "config": {}, **(config or {})},
    )
