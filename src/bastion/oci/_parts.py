"""Layers written in parts, one gzip member per part, so that a part seen before is not compressed again.

Compressing is most of the cost of writing a layer (zlib level 6 runs at ~20 MB/s on a slow core), and
the same package's files make the same bytes in every image that holds them. A gzip file is "a series
of members" whose decompressed data is concatenated (RFC 1952, section 2.2), and every gzip reader of
the OCI toolchain reads all members (Go's ``compress/gzip`` in multistream mode, its default, as used
by containerd, Docker, skopeo and umoci; zlib's ``gunzip``; Python's ``gzip``). So a layer is written
as one member per part plus a last member with the end of the archive, and a member made once is
kept in a :class:`PartCache` keyed by the SHA256 of the tar bytes it holds.

The tar stream is what :func:`~bastion.oci.write_tar` would write for the same entries, except for
the order: parts follow each other in the order given, and entries are sorted by path within each
part. Every directory must be in the part of its children or an earlier one, and a hardlink in the
part of its target, so an extractor always meets a parent, and a hardlink's content, first. The
diff_id is the SHA256 of the uncompressed stream, as always; the blob is reproducible for one zlib
version and level, which name the cache's directory, so a member made by another zlib is never
mixed into a layer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.errors import InternalError
from bastion.oci._files import BlobWriter
from bastion.oci._layer import GZIP_LEVEL, Layer, LayerEntry, Slice, ordered_entries, tar_info
from bastion.oci._model import MEDIA_TYPE_LAYER_GZIP, Descriptor

if TYPE_CHECKING:
    from bastion.oci._store import Store

__all__ = ["PartCache", "add_layer_parts", "write_layer_parts"]

PART_LIMIT = 32 << 20  # a part is split beyond this many tar bytes: parts are held in memory
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


class PartCache:
    """Gzip members by the SHA256 of their uncompressed bytes, under ``root``.

    Each file holds the member's own SHA256 (hex, one line) and then the member. A member is used
    only when that digest matches and the member's trailer (CRC-32 and size of the uncompressed
    data, RFC 1952 section 2.3.1) matches the bytes it stands for; anything else is compressed
    again and the file replaced. Files are written to a temporary name and renamed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root / f"gzip{GZIP_LEVEL}-zlib{zlib.ZLIB_RUNTIME_VERSION}"

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def get(self, digest: str, data: bytes) -> bytes | None:
        try:
            raw = self._path(digest).read_bytes()
        except OSError:
            return None
        head, _, member = raw.partition(b"\n")
        if len(member) < 18 or hashlib.sha256(member).hexdigest().encode() != head:
            return None
        crc, size = struct.unpack("<II", member[-8:])
        if crc != zlib.crc32(data) or size != len(data) & 0xFFFFFFFF:
            return None
        return member

    def put(self, digest: str, member: bytes) -> None:
        target = self._path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(hashlib.sha256(member).hexdigest().encode() + b"\n" + member)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)


def add_layer_parts(
    store: Store,
    parts: Sequence[Sequence[LayerEntry]],
    *,
    source_date_epoch: int,
    cache: PartCache | None = None,
) -> Layer:
    """Write a gzip layer of ``parts`` (see the module docs) into the store and publish it."""
    with store.blob_writer(MEDIA_TYPE_LAYER_GZIP) as writer:
        layer = write_layer_parts(parts, writer, source_date_epoch=source_date_epoch, cache=cache)
        writer.commit(layer.descriptor.digest, layer.descriptor.size)
    return layer


def write_layer_parts(
    parts: Sequence[Sequence[LayerEntry]],
    out: BlobWriter,
    *,
    source_date_epoch: int,
    cache: PartCache | None = None,
) -> Layer:
    """Write a gzip layer of ``parts`` to ``out`` (not committed); return its descriptor and diff_id."""
    chunks = _chunks(_checked(parts))
    diff = hashlib.sha256()
    total = 0
    fds: dict[Path, int] = {}
    try:
        for chunk in chunks:
            data = _tar_bytes(chunk, source_date_epoch, fds)
            diff.update(data)
            total += len(data)
            out.write(_member(data, cache))
    finally:
        for fd in fds.values():
            os.close(fd)
    end = bytes(2 * _BLOCK)  # end of archive, padded to a whole record as tarfile does
    end += bytes(-(total + len(end)) % _RECORD)
    diff.update(end)
    out.write(_member(end, None))
    descriptor = Descriptor(MEDIA_TYPE_LAYER_GZIP, out.digest, out.size)  # the writer hashes what it writes
    return Layer(descriptor, "sha256:" + diff.hexdigest())


def _checked(parts: Sequence[Sequence[LayerEntry]]) -> list[list[LayerEntry]]:
    """The parts with the layer-wide checks of :func:`ordered_entries` applied (parents present,
    hardlink targets files, each hardlink group's content on its first path), each sorted; and the
    order rules of the module docs enforced."""
    where = {entry.path: index for index, part in enumerate(parts) for entry in part}
    checked = {entry.path: entry for entry in ordered_entries(entry for part in parts for entry in part)}
    for path, entry in checked.items():
        parent = path.rpartition("/")[0]
        if parent and where[parent] > where[path]:
            raise InternalError(f"layer part order: {path!r} comes before its directory")
        if entry.kind == "hardlink" and where[entry.linkname] != where[path]:
            raise InternalError(f"layer part order: hardlink {path!r} is not in its target's part")
    return [sorted((checked[e.path] for e in part), key=lambda e: e.path) for part in parts if part]


def _chunks(parts: list[list[LayerEntry]]) -> list[list[LayerEntry]]:
    """Parts split where they exceed :data:`PART_LIMIT` (by content size: headers are small)."""
    chunks: list[list[LayerEntry]] = []
    for part in parts:
        current: list[LayerEntry] = []
        filled = 0
        for entry in part:
            if current and filled + entry.size > PART_LIMIT:
                chunks.append(current)
                current, filled = [], 0
            current.append(entry)
            filled += entry.size
        chunks.append(current)
    return chunks


def _tar_bytes(entries: list[LayerEntry], epoch: int, fds: dict[Path, int]) -> bytes:
    """The tar records of ``entries`` (pax headers, as :func:`~bastion.oci.write_tar` writes them),
    without the end-of-archive blocks."""
    out = io.BytesIO()
    for entry in entries:
        info = tar_info(entry, epoch)
        info.size = entry.size
        out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if entry.kind != "file":
            continue
        if isinstance(entry.source, Slice):
            fd = fds.get(entry.source.file)
            if fd is None:
                fd = fds[entry.source.file] = os.open(entry.source.file, os.O_RDONLY | os.O_CLOEXEC)
            content = os.pread(fd, entry.source.size, entry.source.offset)
            if len(content) != entry.source.size:
                raise InternalError(f"{entry.path}: its content is shorter than its slice")
        else:
            content = entry.content()
        out.write(content)
        out.write(bytes(-len(content) % _BLOCK))
    return out.getvalue()


def _member(data: bytes, cache: PartCache | None) -> bytes:
    digest = hashlib.sha256(data).hexdigest() if cache is not None else ""
    if cache is not None and (member := cache.get(digest, data)) is not None:
        return member
    out = io.BytesIO()
    # filename="" and mtime=0: no FNAME field and a zero MTIME in the gzip header (RFC 1952 2.3).
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, filename="", mtime=0) as gz:
        gz.write(data)
    member = out.getvalue()
    if cache is not None:
        cache.put(digest, member)
    return member
