"""Build small images for the scanning tests: layer tars written entry by entry with :mod:`tarfile`
(so that tests can write what no honest builder writes: ``..``, whiteouts, devices), compressed, and
stored in an OCI image layout with :class:`bastion.oci.Store`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from bastion.oci import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_ZSTD,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    Platform,
    Store,
    image_manifest,
    put_index,
)


@dataclass
class E:
    """One tar entry: ``kind`` is file, dir, symlink, hardlink, char, fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link: str = ""
    xattrs: dict[str, str] = field(default_factory=dict)


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_bytes(entries: Sequence[E]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode, info.uid, info.gid = e.mode, e.uid, e.gid
            info.linkname = e.link
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs.items()}
            if e.kind == "char":
                info.devmajor, info.devminor = 1, 3
            info.size = len(e.data) if e.kind == "file" else 0
            tar.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return out.getvalue()


def compress(tar: bytes, how: str) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip.compress(tar, mtime=0), MEDIA_TYPE_LAYER_GZIP
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(tar), MEDIA_TYPE_LAYER_ZSTD
    return tar, MEDIA_TYPE_LAYER


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_doc(
    diff_ids: list[str], arch: str = "amd64", created: str = "2024-01-02T03:04:05Z"
) -> dict[str, object]:
    return {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {"User": "65532"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def add_image(
    store: Store, layers: Sequence[Sequence[E]], *, arch: str = "amd64", compression: str = "gzip"
) -> Descriptor:
    """Store a single-platform image; returns its manifest descriptor (with platform)."""
    descs, diff_ids = [], []
    for entries in layers:
        tar = tar_bytes(entries)
        blob, media_type = compress(tar, compression)
        descs.append(store.put_blob(blob, media_type))
        diff_ids.append(sha256(tar))
    config = store.put_json(config_doc(diff_ids, arch), MEDIA_TYPE_CONFIG)
    manifest = store.put_json(image_manifest(config, descs), MEDIA_TYPE_MANIFEST)
    return Descriptor(manifest.media_type, manifest.digest, manifest.size, platform=Platform.parse(arch))


def oci_dir(path: Path, layers: Sequence[Sequence[E]], *, tag: str = "test/image:1", **kw: str) -> Store:
    """An OCI layout at ``path`` holding one image tagged ``tag``."""
    store = Store(path)
    store.tag(tag, add_image(store, layers, **kw))
    return store


def multi_platform(path: Path, layers: Sequence[Sequence[E]], arches: Sequence[str], tag: str) -> Store:
    store = Store(path)
    store.tag(tag, put_index(store, [add_image(store, layers, arch=a) for a in arches]))
    return store


def docker_save_legacy(dest: Path, layers: Sequence[Sequence[E]], repo_tag: str = "legacy/app:2") -> Path:
    """The pre-Docker-25 ``docker save`` format: ``<config hex>.json``, ``<id>/layer.tar`` (plain tar),
    ``manifest.json``; no OCI layout."""
    tars = [tar_bytes(entries) for entries in layers]
    config = json.dumps(config_doc([sha256(t) for t in tars])).encode()
    config_name = sha256(config).removeprefix("sha256:") + ".json"
    names = [f"{sha256(t).removeprefix('sha256:')[:12]}/layer.tar" for t in tars]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [repo_tag], "Layers": names}]).encode()
    with tarfile.open(dest, "w") as tar:
        for name, data in [
            (config_name, config),
            ("manifest.json", manifest),
            *zip(names, tars, strict=True),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest
