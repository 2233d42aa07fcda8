"""Deterministic layer writer: the same entries always give the same tar, and the same blob.

Rules (the reproducible-builds.org "archives" recipe, applied to OCI layers):

* entries sorted lexically by path (a parent always sorts before its children); every parent directory
  must be among the entries, so nothing is invented;
* numeric owners only (``uname``/``gname`` empty), mode bits as given (setuid/setgid/sticky kept);
* mtimes clamped to ``SOURCE_DATE_EPOCH``: ``min(mtime, source_date_epoch)``;
* gzip header with mtime 0 and no file name, at a fixed compression level; zstd single-threaded at a
  fixed level, without a content size in the frame header.

Tar format: POSIX.1-2001 **pax**. It is the standard format (GNU tar's is not standardised), it stores
paths and link targets of any length and any UTF-8 name losslessly, and large uids/sizes without the GNU
base-256 extensions; every OCI consumer (Go ``archive/tar`` in containerd/Docker/skopeo, umoci) reads it.
Python only emits a pax extended header when a field does not fit ustar, so ordinary entries are plain
ustar headers.

The diff_id (sha256 of the tar) depends only on the entries and the tar writer. The blob digest also
depends on the compressor library (zlib or zlib-ng, libzstd) and is reproducible on one toolchain.
"""

from __future__ import annotations

import contextlib
import enum
import gzip
import hashlib
import io
import mmap
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol

import zstandard

from bastion.errors import IntegrityError, InternalError
from bastion.oci._model import MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD, Descriptor

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from typing_extensions import Buffer

    from bastion.oci._store import Store

GZIP_LEVEL = 6  # zlib's default; the same level must be used forever for digests to repeat
ZSTD_LEVEL = 3  # libzstd's default
_CHUNK = 1024 * 1024
# SliceReader.read gives a map's pages back after a read at least this long, and all maps' pages
# once its shorter reads add up to more than _RESIDENT_MAPPED.
_RELEASE_AFTER = 64 * 1024
_RESIDENT_MAPPED = 16 * 1024 * 1024

Kind = Literal["file", "dir", "symlink", "hardlink"]
_TAR_TYPES: dict[str, bytes] = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
}


@dataclass(frozen=True)
class Slice:
    """``size`` bytes of ``file`` from ``offset``: a file's content kept inside a bigger file (the
    builder keeps each package's files back to back in one file, and never writes them one by one)."""

    file: Path
    offset: int
    size: int
    # A stable name for the bytes of ``file`` (the digest of what it was made from): equal origins,
    # offsets and sizes are equal bytes, which lets a layer part be found without reading them.
    origin: str = ""
    sha256: str = ""  # of the bytes, when known: checked whenever the whole slice is read for an image

    def read(self, limit: int = -1) -> bytes:
        with SliceReader() as reader:
            return reader.read(self, limit)


class SliceReader:
    """Reads :class:`Slice` contents, opening each file they lie in once; :meth:`close` (or leaving
    the ``with`` block) closes them.

    :meth:`read` copies out of a memory map of the file. A build reads thousands of small slices
    (the SBOM's catalogers, the compliance rules) while its layer threads run, and each ``pread``
    gives up the interpreter lock and then waits for a layer thread to hand it back: in a warm
    build the private-key rule's 3,700 reads took 66 ms that way and ~5 ms from a map. The files
    are never changed once written (the unpacked-package cache and an opened image's spool files),
    so a map cannot see them shrink.

    With ``mapped=False`` nothing is mapped and every read is a ``pread``: what reads each byte once
    (writing the tree for the image tests) then holds no page of the files, where a map's pages
    would count in the build's resident memory until the reader is closed (issue 19: 825 MiB).
    A reader's maps keep few pages resident: :meth:`read` gives them back as it goes."""

    def __init__(self, *, mapped: bool = True) -> None:
        self._mapped = mapped
        self._fds: dict[Path, int] = {}
        self._maps: dict[Path, mmap.mmap | None] = {}
        self._checked: set[tuple[Path, int, int]] = set()
        self._resident = 0  # bytes read from maps since their pages were last given back

    def _fd(self, file: Path) -> int:
        fd = self._fds.get(file)
        if fd is None:
            fd = self._fds[file] = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
        return fd

    def _map(self, file: Path) -> mmap.mmap | None:
        """The file's map; None for an empty file (nothing to map) or one its filesystem will not
        map (some FUSE and 9p mounts), which is then read with ``pread``."""
        if file not in self._maps:
            fd = self._fd(file)
            mapped = None
            if self._mapped and os.fstat(fd).st_size:
                with contextlib.suppress(OSError, ValueError):
                    mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
            self._maps[file] = mapped
        return self._maps[file]

    def read(self, piece: Slice, limit: int = -1) -> bytes:
        """The slice's bytes (at most ``limit`` of them when given; fewer only where the file ends)."""
        size = piece.size if limit < 0 else min(limit, piece.size)
        if size <= 0:
            return b""
        mapped = self._map(piece.file)
        if mapped is None:
            return _pread_all(self._fd(piece.file), size, piece.offset)
        data = mapped[piece.offset : piece.offset + size]
        # The bytes are copied out, so the map's pages need not stay in this process: kept, they
        # counted in its resident memory (a compliance scan at 317 packages had 161 MiB of them,
        # issue 19). madvise(2) MADV_DONTNEED on a shared file map drops the pages from this
        # process only; a later read faults them in again from the page cache. It keeps the
        # interpreter lock, unlike a pread, so no layer thread gets in between.
        if size >= _RELEASE_AFTER:
            start = piece.offset - piece.offset % mmap.PAGESIZE
            with contextlib.suppress(OSError, ValueError):
                mapped.madvise(mmap.MADV_DONTNEED, start, piece.offset + size - start)
        else:
            self._resident += size
            if self._resident > _RESIDENT_MAPPED:  # many small reads: all maps given back at once
                self._resident = 0
                for each in self._maps.values():
                    if each is not None:
                        with contextlib.suppress(OSError, ValueError):
                            each.madvise(mmap.MADV_DONTNEED)
        return data

    def read_checked(self, piece: Slice, path: str, limit: int = -1) -> bytes:
        """The whole slice, refused (:class:`~bastion.errors.IntegrityError`) when it does not match
        the SHA256 recorded for it: what a build reads of a file for its image (layer parts, the
        SBOM, the compliance rules, the image tests' tree) is what the verified package held.
        A ``limit`` short of the slice reads a head (a magic number), too short to check. ``path``
        names the file in messages."""
        if 0 <= limit < piece.size:
            return self.read(piece, limit)
        data = self.read(piece)
        place = (piece.file, piece.offset, piece.size)
        if place not in self._checked:
            problem = None
            if len(data) != piece.size:
                problem = f"{len(data)} bytes where {piece.size} were unpacked"
            elif piece.sha256 and hashlib.sha256(data).hexdigest() != piece.sha256:
                problem = "its bytes do not match the SHA256 recorded when it was unpacked"
            if problem:
                raise IntegrityError(
                    f"{path}: {problem}",
                    where=str(piece.file),
                    hint="the cache is damaged: remove that directory and build again",
                )
            self._checked.add(place)
        return data

    def open(self, piece: Slice) -> BinaryIO:
        """The slice as a seekable file, valid until this reader is closed."""
        return io.BufferedReader(_FileWindow(self._fd(piece.file), piece.offset, piece.size))

    def close(self) -> None:
        for mapped in self._maps.values():
            if mapped is not None:
                mapped.close()
        self._maps.clear()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> SliceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset`` of ``fd``, in as many ``pread`` calls as it takes (Linux returns
    at most 0x7ffff000 bytes per call); fewer only at the end of the file."""
    parts: list[bytes] = []
    done = 0
    while done < size and (more := os.pread(fd, size - done, offset + done)):
        parts.append(more)
        done += len(more)
    return b"".join(parts)


class _FileWindow(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of an open file (by ``pread``); the
    file descriptor stays its owner's."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._offset, self._size, self._pos = fd, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + pos < 0:
            raise ValueError("negative seek position")
        self._pos = base + pos
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        data = os.pread(self._fd, n, self._offset + self._pos) if n else b""
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass(frozen=True)
class LayerEntry:
    """One filesystem object in a layer.

    ``path`` is root-relative without a leading ``/``. ``linkname`` is the target of a symlink (as
    stored) or the root-relative path of a hardlink's target. A file's content comes from ``source``
    (read when the layer is written) or ``data``.
    """

    path: str
    kind: Kind
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str = ""
    source: Path | Slice | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        parts = self.path.split("/")
        if not self.path or any(p in ("", ".", "..") for p in parts) or "\0" in self.path:
            raise InternalError(f"layer entry path must be root-relative and normalised: {self.path!r}")
        if self.kind not in _TAR_TYPES:
            raise InternalError(f"{self.path}: unknown entry kind {self.kind!r}")
        if not 0 <= self.mode <= 0o7777:
            raise InternalError(f"{self.path}: mode {self.mode:#o} is not permission bits only")
        if self.uid < 0 or self.gid < 0 or self.mtime < 0:
            raise InternalError(f"{self.path}: negative uid, gid or mtime")
        has_content = self.source is not None or self.data is not None
        if self.kind == "file" and (self.source is None) == (self.data is None):
            raise InternalError(f"{self.path}: a file needs exactly one of source or data")
        if self.kind != "file" and has_content:
            raise InternalError(f"{self.path}: only files have content")
        if (self.kind in ("symlink", "hardlink")) != bool(self.linkname):
            raise InternalError(
                f"{self.path}: linkname is for symlinks and hardlinks only, and required there"
            )

    @property
    def size(self) -> int:
        """A file's content size (0 for anything else)."""
        if self.data is not None:
            return len(self.data)
        if isinstance(self.source, Slice):
            return self.source.size
        return self.source.stat().st_size if self.source is not None else 0

    def content(self, limit: int = -1) -> bytes:
        """A file's content (at most ``limit`` bytes when given)."""
        if self.data is not None:
            return self.data if limit < 0 else self.data[:limit]
        if isinstance(self.source, Slice):
            with SliceReader() as reader:
                return reader.read_checked(self.source, self.path, limit)
        if self.source is None:
            raise InternalError(f"{self.path}: a {self.kind} has no content")
        with self.source.open("rb") as f:
            return f.read(limit)


class Compression(enum.StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPE_LAYER_GZIP if self is Compression.GZIP else MEDIA_TYPE_LAYER_ZSTD


@dataclass(frozen=True)
class Layer:
    """A written layer: its blob descriptor (compressed) and its diff_id (sha256 of the tar)."""

    descriptor: Descriptor
    diff_id: str


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _HashingWriter(io.BufferedIOBase):
    """Hashes and counts every byte on its way to ``sink``."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer, /) -> int:
        chunk = bytes(data)
        self._sink.write(chunk)
        self.hash.update(chunk)
        self.size += len(chunk)
        return len(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class _ZstdWriter:
    """One zstd frame, single-threaded, no content size in the header: the same input, the same bytes."""

    def __init__(self, sink: Sink) -> None:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=False, threads=0)
        self._cobj = compressor.compressobj()
        self._sink = sink

    def write(self, data: bytes, /) -> int:
        if out := self._cobj.compress(data):
            self._sink.write(out)
        return len(data)

    def finish(self) -> None:
        self._sink.write(self._cobj.flush())


def write_tar(entries: Iterable[LayerEntry], out: Sink, *, source_date_epoch: int) -> str:
    """Write the entries as a deterministic pax tar to ``out``; return its sha256 digest (diff_id)."""
    ordered = ordered_entries(entries)
    hashing = _HashingWriter(out)
    with SliceReader() as slices:
        _write_entries(ordered, hashing, slices, source_date_epoch)
    return hashing.digest


def _write_entries(
    ordered: list[LayerEntry], out: _HashingWriter, slices: SliceReader, source_date_epoch: int
) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for entry in ordered:
            info = tar_info(entry, source_date_epoch)
            if entry.kind != "file":
                tar.addfile(info)
            elif entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            elif isinstance(entry.source, Slice):
                info.size = entry.source.size
                tar.addfile(info, slices.open(entry.source))
            else:
                assert entry.source is not None  # checked in LayerEntry
                with entry.source.open("rb") as f:
                    info.size = os.fstat(f.fileno()).st_size
                    tar.addfile(info, f)


def tar_info(entry: LayerEntry, source_date_epoch: int) -> tarfile.TarInfo:
    """The tar header of ``entry`` (size 0: the caller sets a file's)."""
    info = tarfile.TarInfo(entry.path)
    info.type = _TAR_TYPES[entry.kind]
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = min(entry.mtime, source_date_epoch)
    info.linkname = entry.linkname
    info.devmajor = info.devminor = 0
    return info


def write_layer(
    entries: Iterable[LayerEntry],
    out: Sink,
    *,
    source_date_epoch: int,
    compression: Compression = Compression.GZIP,
) -> Layer:
    """Write a compressed layer to ``out`` in one pass, computing diff_id, digest and size as it goes."""
    blob = _HashingWriter(out)
    if compression is Compression.GZIP:
        # filename="" and mtime=0: no FNAME field and a zero MTIME in the gzip header (RFC 1952 2.3).
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=GZIP_LEVEL, filename="", mtime=0) as gz:
            diff_id = write_tar(entries, gz, source_date_epoch=source_date_epoch)
    else:
        zst = _ZstdWriter(blob)
        diff_id = write_tar(entries, zst, source_date_epoch=source_date_epoch)
        zst.finish()
    return Layer(Descriptor(compression.media_type, blob.digest, blob.size), diff_id)


def add_layer(
    store: Store,
    entries: Iterable[LayerEntry],
    *,
    source_date_epoch: int,
    compression: Compression = Compression.GZIP,
) -> Layer:
    """Write a layer straight into the store's blobs directory (never whole in memory) and publish it."""
    with store.blob_writer(compression.media_type) as writer:
        layer = write_layer(entries, writer, source_date_epoch=source_date_epoch, compression=compression)
        writer.commit(layer.descriptor.digest, layer.descriptor.size)
    return layer


def ordered_entries(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    """Sort entries, check parents and hardlink targets, and put each hardlink group's content first.

    Extractors need a hardlink's target earlier in the archive. When a link sorts before its target,
    the first path of the group (in archive order) carries the content and the others link to it; the
    extracted tree is the same.
    """
    by_path: dict[str, LayerEntry] = {}
    for entry in entries:
        if entry.path in by_path:
            raise InternalError(f"duplicate layer entry {entry.path!r}")
        by_path[entry.path] = entry
    for path in by_path:
        parent = path.rpartition("/")[0]
        if parent and (parent not in by_path or by_path[parent].kind != "dir"):
            raise InternalError(f"layer entry {path!r} has no parent directory entry {parent!r}")
    groups: dict[str, list[str]] = {}
    for entry in by_path.values():
        if entry.kind == "hardlink":
            linked = by_path.get(entry.linkname)
            if linked is None or linked.kind != "file":
                raise InternalError(f"hardlink {entry.path!r} points to {entry.linkname!r}, not a file entry")
            groups.setdefault(entry.linkname, [entry.linkname]).append(entry.path)
    for target, members in groups.items():
        first = min(members)
        content = by_path[target]
        for path in members:
            if path == first:
                by_path[path] = replace(content, path=path)
            else:
                by_path[path] = LayerEntry(
                    path, "hardlink", content.mode, content.uid, content.gid, content.mtime, linkname=first
                )
    return [by_path[path] for path in sorted(by_path)]
