"""Applying image layers, in order, into an index of the merged filesystem, reading each layer once.

Nothing of an image is written to disk as a file of its own. Each layer blob is streamed once:
the compressed-bytes hash (the blob digest) → the decompressor (gzip, zstd, or none, recognised by
magic bytes) → the uncompressed-bytes hash (the diff_id) → one *spool* file holding the layer's
uncompressed tar. Digests are compared before the spool is parsed; a mismatch raises
:class:`~bastion.errors.IntegrityError` and the caller removes the spools. The tar headers are then
read from the spool (random access: file contents are skipped, not read) into :class:`FileInfo`
records, and each regular file's content is known as (spool, offset, size): :class:`LayerContents`
reads it with ``pread``. Creating thousands of files, directories and symlinks on disk was most of
the cost of opening an image; it is also what an archive could abuse, so not doing it removes a class
of path attacks.

Rules (image-spec ``layer.md``):

* Paths are normalised to absolute image paths; an entry with a ``..`` component (or a hardlink
  to one) is refused with :class:`~bastion.errors.UnsafeArchiveError`.
* Whiteouts ("Whiteouts"): ``.wh.NAME`` removes ``NAME`` and ``.wh..wh..opq`` removes every child of
  its directory, from *lower* layers only: paths the same layer wrote stay ("Files that are present in
  the same layer as a whiteout file can only be hidden by whiteout files in subsequent layers").
  Other ``.wh..wh.`` names (aufs metadata) are ignored; no whiteout is ever recorded as a file.
* Every ancestor of an entry is a directory of the merged tree; an ancestor that is a symlink or a
  file is replaced by a directory — what overlay filesystems show when an upper layer has a directory
  where a lower one has a symlink. No symlink is ever followed.
* A hardlink shares the content of the regular file its target names *when the link is applied*
  (an image path, never resolved on the host); a hardlink to anything else is listed without content.
* Device nodes and FIFOs are listed in :attr:`Tree.files` and have no content.
* A sparse file (GNU or PAX sparse member) stores only its data runs in the tar: its content is
  expanded into one more spool file, so that it too is read by offset.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import zstandard

from bastion.errors import InputError, IntegrityError, UnsafeArchiveError
from bastion.image._model import FileInfo, FileKind
from bastion.oci import Slice, SliceReader

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_XATTR = "SCHILY.xattr."
_DIR_MODE = 0o755
#: The longest entry name accepted: Linux's PATH_MAX (<linux/limits.h>), with its terminating NUL.
MAX_PATH = 4095
_KINDS = {
    tarfile.DIRTYPE: FileKind.DIRECTORY,
    tarfile.SYMTYPE: FileKind.SYMLINK,
    tarfile.LNKTYPE: FileKind.HARDLINK,
    tarfile.CHRTYPE: FileKind.CHAR_DEVICE,
    tarfile.BLKTYPE: FileKind.BLOCK_DEVICE,
    tarfile.FIFOTYPE: FileKind.FIFO,
}


@dataclass(frozen=True)
class LayerResult:
    digest: str  # sha256 of the bytes read (the blob)
    size: int
    diff_id: str  # sha256 of the uncompressed tar
    compression: str  # "gzip", "zstd" or "none"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Hashing(io.RawIOBase):
    """A raw reader that hashes and counts what passes through it."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        n = len(data)
        view[:n] = data
        self.hash.update(data)
        self.size += n
        return n

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class Budget:
    """The bytes an image may still expand to (``Settings.max_image_size``), shared by the threads
    that spool its layers: a few MB of gzip can decompress to more than the disk holds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._left = limit
        self._lock = threading.Lock()

    def take(self, size: int, where: str) -> None:
        with self._lock:
            self._left -= size
            if self._left < 0:
                raise InputError(
                    f"the image expands to more than {self.limit} bytes uncompressed",
                    where=where,
                    hint="if the image is really that large, raise BASTION_MAX_IMAGE_SIZE (e.g. 200G)",
                )


def spool_layer(blob: Readable, spool: Path, where: str, budget: Budget | None = None) -> LayerResult:
    """Decompress ``blob`` into the new file ``spool``, hashing both sides.

    hashlib, zlib and zstandard release the GIL on large buffers, so layers spooled from several
    threads decompress in parallel.
    """
    raw = _Hashing(blob)
    buffered = io.BufferedReader(raw, _CHUNK)
    magic = buffered.peek(4)[:4]
    decompressed: Readable
    if magic.startswith(_GZIP_MAGIC):
        compression, decompressed = "gzip", gzip.GzipFile(fileobj=buffered, mode="rb")
    elif magic.startswith(_ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        compression, decompressed = "zstd", reader
    else:
        compression, decompressed = "none", buffered
    tar_hash, tar_size = hashlib.sha256(), 0
    try:
        fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := decompressed.read(_CHUNK):
                if budget is not None:
                    budget.take(len(chunk), where)
                tar_hash.update(chunk)
                tar_size += len(chunk)
                out.write(chunk)
        while buffered.read(_CHUNK):  # anything after the compressed stream, so the blob hash is complete
            pass
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise IntegrityError(f"layer is not readable ({compression}): {exc}", where=where) from None
    return LayerResult(raw.digest, raw.size, "sha256:" + tar_hash.hexdigest(), compression)


def normalise(name: str, where: str) -> str:
    """A tar member name as an absolute image path (``./usr/bin/x`` → ``/usr/bin/x``)."""
    if len(name) > MAX_PATH:
        # No process of the image could open a longer path (PATH_MAX), and every reader of the index
        # pays for its length at each of its components.
        raise UnsafeArchiveError(
            f"entry {name[:60]!r}... is {len(name):,} characters long, more than PATH_MAX ({MAX_PATH})",
            where=where,
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or "\0" in name:
        raise UnsafeArchiveError(f"entry {name!r} would escape the image root", where=where)
    return "/" + "/".join(parts)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


#: Where a regular file's bytes are: (index of the layer's spool, offset in it, size).
Extent = tuple[int, int, int]


class Tree:
    """The merged filesystem: :class:`FileInfo` records and, for regular files, their extents."""

    def __init__(
        self, extra: Path | None = None, extra_index: int = -1, budget: Budget | None = None
    ) -> None:
        """``extra`` is where the contents of sparse files go (spool number ``extra_index``), within
        ``budget``."""
        self.files: dict[str, FileInfo] = {}
        self.extents: dict[str, Extent] = {}
        self._children: dict[str, set[str]] = {"/": set()}
        self._layer_paths: set[str] = set()
        self._extra, self._extra_index, self._budget = extra, extra_index, budget
        self._extra_size = 0

    def apply_layer(self, spool: Path, index: int, where: str) -> None:
        """Apply the uncompressed layer tar in ``spool`` (already checked against its digests)."""
        self._layer_paths = set()
        try:
            with tarfile.open(spool, mode="r:") as tar:
                for member in tar:
                    self._entry(tar, member, index, where)
        except (tarfile.TarError, OSError, EOFError) as exc:
            if isinstance(exc, UnsafeArchiveError):
                raise
            raise IntegrityError(f"layer is not a readable tar: {exc}", where=where) from None

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, index: int, where: str) -> None:  # noqa: PLR0912  (one branch per member kind and whiteout rule of a layer)
        path = normalise(member.name, where)
        name = path.rsplit("/", 1)[-1]
        if name.startswith(_WHITEOUT):
            if name == _WHITEOUT:
                # layer.md "Whiteouts": ".wh." followed by the name of the path to delete; with no
                # name it would name its own directory (for "./.wh.", the root itself).
                raise UnsafeArchiveError(f"whiteout {member.name!r} names no file", where=where)
            self._whiteout(path, name)
            return
        if path == "/":
            if member.isdir():
                self.files["/"] = self._info("/", member, FileKind.DIRECTORY, index)
            return
        self._make_parents(path, index)
        existing = self.files.get(path)
        if existing is not None and not (existing.kind is FileKind.DIRECTORY and member.isdir()):
            self._remove(path)
        link_target: str | None = None
        size = 0
        if member.isdir():
            kind = FileKind.DIRECTORY
        elif member.isreg():
            kind, size = FileKind.FILE, member.size
            if member.sparse is None:
                self.extents[path] = (index, member.offset_data, size)
            else:  # GNU/PAX sparse: the bytes are not one run of the tar; expanded into the extra spool
                self.extents[path] = self._expand_sparse(tar, member, where)
        elif member.issym():
            if len(member.linkname) > MAX_PATH:  # symlink(2): ENAMETOOLONG
                raise UnsafeArchiveError(
                    f"symlink {member.name!r} points at a target longer than PATH_MAX ({MAX_PATH})",
                    where=where,
                )
            kind, link_target = FileKind.SYMLINK, member.linkname
        elif member.islnk():
            kind, link_target = FileKind.HARDLINK, normalise(member.linkname, where)
            extent = self.extents.get(link_target)
            target = self.files.get(link_target)
            if (
                extent is not None
                and target is not None
                and target.kind in (FileKind.FILE, FileKind.HARDLINK)
            ):
                size = extent[2]
                self.extents[path] = extent
        elif member.type in _KINDS:
            kind = _KINDS[member.type]  # devices and FIFOs: listed, no content
        else:
            return  # GNU volume headers and the like carry no file
        self._put(self._info(path, member, kind, index, size=size, link_target=link_target))
        self._layer_paths.add(path)

    def _expand_sparse(self, tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> Extent:
        if self._extra is None:
            raise IntegrityError(f"sparse file {member.name!r} cannot be read here", where=where)
        source = tar.extractfile(member)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(self._extra, flags, 0o600), "wb") as out:
            offset = self._extra_size
            written = 0
            while source is not None and (chunk := source.read(_CHUNK)):
                if self._budget is not None:
                    self._budget.take(len(chunk), where)
                out.write(chunk)
                written += len(chunk)
        self._extra_size += written
        return (self._extra_index, offset, written)

    def _info(
        self,
        path: str,
        member: tarfile.TarInfo,
        kind: FileKind,
        index: int,
        *,
        size: int = 0,
        link_target: str | None = None,
    ) -> FileInfo:
        xattrs = {
            key.removeprefix(_XATTR): value.encode("utf-8", "surrogateescape")
            for key, value in member.pax_headers.items()
            if key.startswith(_XATTR)
        }
        return FileInfo(
            path=path,
            kind=kind,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            size=size,
            link_target=link_target,
            layer=index,
            xattrs=xattrs,
        )

    def _make_parents(self, path: str, index: int) -> None:
        """Make every ancestor of ``path`` a directory of the tree, replacing anything else."""
        parent = _parent(path)
        existing = self.files.get(parent)
        if existing is not None and existing.kind is FileKind.DIRECTORY:
            return  # the common case: the parent is there, so every ancestor is
        parts = path.strip("/").split("/")[:-1]
        current = ""
        for part in parts:
            current += "/" + part
            existing = self.files.get(current)
            if existing is not None and existing.kind is FileKind.DIRECTORY:
                continue
            if existing is not None:
                self._remove(current)  # a symlink or file where a directory must be: never followed
            self._put(FileInfo(current, FileKind.DIRECTORY, _DIR_MODE, 0, 0, 0, layer=index))

    def _put(self, info: FileInfo) -> None:
        self.files[info.path] = info
        self._children[_parent(info.path)].add(info.path)
        if info.kind is FileKind.DIRECTORY:
            self._children.setdefault(info.path, set())

    def _remove(self, path: str) -> None:
        """Remove ``path`` (and everything below it) from the tree."""
        info = self.files.pop(path)
        self.extents.pop(path, None)
        self._children[_parent(path)].discard(path)
        if info.kind is FileKind.DIRECTORY:
            stack = [path]
            while stack:
                for child in self._children.pop(stack.pop(), set()):
                    self.files.pop(child, None)
                    self.extents.pop(child, None)
                    stack.append(child)

    # -- whiteouts ------------------------------------------------------------------------------------

    def _whiteout(self, path: str, name: str) -> None:
        directory = _parent(path)
        if name == _OPAQUE:
            for child in sorted(self._children.get(directory, ())):
                self._remove_lower(child)
        elif not name.startswith(_WHITEOUT + _WHITEOUT):
            hidden = path.removesuffix(name) + name.removeprefix(_WHITEOUT)
            if hidden in self.files:
                self._remove_lower(hidden)

    def _remove_lower(self, path: str) -> None:
        """Remove what lower layers put at ``path``, keeping what the current layer wrote."""
        if path in self._layer_paths or path == "/":  # the root is never removed, only emptied
            return
        info = self.files[path]
        if info.kind is FileKind.DIRECTORY and self._any_from_layer(path):
            for child in sorted(self._children.get(path, ())):
                self._remove_lower(child)
            return
        self._remove(path)

    def _any_from_layer(self, directory: str) -> bool:
        prefix = directory + "/"
        return any(p.startswith(prefix) for p in self._layer_paths)


class LayerContents:
    """File contents read from the layers' spool files by extent (:class:`~bastion.image.Contents`)."""

    def __init__(self, spools: list[Path], extents: dict[str, Extent]) -> None:
        self._spools = spools
        self._extents = extents
        self._slices = SliceReader()

    def _slice(self, path: str) -> Slice:
        layer, offset, size = self._extents[path]
        return Slice(self._spools[layer], offset, size)

    def read(self, path: str, limit: int) -> bytes:
        return self._slices.read(self._slice(path), limit)

    def open(self, path: str) -> BinaryIO:
        return self._slices.open(self._slice(path))

    def close(self) -> None:
        self._slices.close()
