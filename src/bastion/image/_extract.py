"""Applying image layers, in order, into a directory, safely, reading each layer once.

Each layer blob is streamed through: the compressed-bytes hash (the blob digest) → the decompressor
(gzip, zstd, or none, recognised by magic bytes) → the uncompressed-bytes hash (the diff_id) → a
streaming tar reader. Digests are compared when the layer's stream ends; a mismatch raises
:class:`~bastion.errors.IntegrityError` before the next layer is read and before the target is handed
to anyone, and the partly written directory is removed by the caller.

Rules (image-spec ``layer.md``):

* Paths are normalised to absolute image paths; an entry with a ``..`` component (or a hardlink
  to one) is refused with :class:`~bastion.errors.UnsafeArchiveError`.
* Whiteouts ("Whiteouts"): ``.wh.NAME`` removes ``NAME`` and ``.wh..wh..opq`` removes every child of
  its directory, from *lower* layers only: paths the same layer wrote stay ("Files that are present in
  the same layer as a whiteout file can only be hidden by whiteout files in subsequent layers").
  Other ``.wh..wh.`` names (aufs metadata) are ignored; no whiteout is ever recorded as a file.
* No symlink of the image is ever followed when writing. Every ancestor of an entry must be a
  directory *of our tree* (created by us on disk); an ancestor that is a symlink or a file is
  replaced by a directory — what overlay filesystems show when an upper layer has a directory where a
  lower one has a symlink. Files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` after the old path is
  unlinked (so writing never changes another hardlink of the same inode).
* Hardlinks are made only to regular files already in the tree (their target is an image path, never
  resolved on the host); a hardlink to anything else is listed but not created.
* Device nodes and FIFOs are listed in :attr:`files` but never created.
* On disk, files are 0644 (0755 when any execute bit is set) and directories 0755, so the scanning
  user can read everything; the image's owners and modes are in the :class:`FileInfo` records.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import zstandard

from bastion.errors import IntegrityError, UnsafeArchiveError
from bastion.image._model import FileInfo, FileKind

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_XATTR = "SCHILY.xattr."
_DIR_MODE = 0o755
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


def _drain(reader: Readable) -> None:
    while reader.read(_CHUNK):
        pass


def normalise(name: str, where: str) -> str:
    """A tar member name as an absolute image path (``./usr/bin/x`` → ``/usr/bin/x``)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or "\0" in name:
        raise UnsafeArchiveError(f"entry {name!r} would escape the image root", where=where)
    return "/" + "/".join(parts)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class Tree:
    """The merged filesystem being built under ``root`` and its :class:`FileInfo` records."""

    def __init__(self, root: Path, content: Callable[[str, int], bool] | None = None) -> None:
        self.root = root
        self._content = content
        self.files: dict[str, FileInfo] = {}
        self._children: dict[str, set[str]] = {"/": set()}
        self._layer_paths: set[str] = set()

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    # -- layers -------------------------------------------------------------------------------------

    def apply_layer(self, blob: Readable, index: int, where: str) -> LayerResult:
        """Apply one layer blob; returns what was read so the caller can check digests."""
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
        tar_bytes = _Hashing(decompressed)
        self._layer_paths = set()
        try:
            with tarfile.open(fileobj=io.BufferedReader(tar_bytes, _CHUNK), mode="r|") as tar:
                for member in tar:
                    self._entry(tar, member, index, where)
            _drain(io.BufferedReader(tar_bytes))  # tar padding after the end-of-archive blocks
            _drain(buffered)  # and anything after the compressed stream, so the blob hash is complete
        except (tarfile.TarError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            if isinstance(exc, UnsafeArchiveError):
                raise
            raise IntegrityError(f"layer is not a readable tar ({compression}): {exc}", where=where) from None
        return LayerResult(raw.digest, raw.size, tar_bytes.digest, compression)

    def _entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo, index: int, where: str) -> None:
        path = normalise(member.name, where)
        name = path.rsplit("/", 1)[-1]
        if name.startswith(_WHITEOUT):
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
        host = self.host(path)
        link_target: str | None = None
        size = 0
        if member.isdir():
            kind = FileKind.DIRECTORY
            if existing is None or existing.kind is not FileKind.DIRECTORY:
                host.mkdir(_DIR_MODE)
        elif member.isreg():
            kind = FileKind.FILE
            size = member.size
            if self._content is None or self._content(path, member.mode):
                self._write(host, tar, member)
        elif member.issym():
            kind, link_target = FileKind.SYMLINK, member.linkname
            host.symlink_to(member.linkname)
        elif member.islnk():
            kind = FileKind.HARDLINK
            link_target = normalise(member.linkname, where)
            target = self.files.get(link_target)
            if target is not None and target.kind in (FileKind.FILE, FileKind.HARDLINK):
                size = target.size
                if os.path.lexists(self.host(link_target)):
                    # linkat(2) without AT_SYMLINK_FOLLOW: the target is our own regular file.
                    os.link(self.host(link_target), host, follow_symlinks=False)
        elif member.type in _KINDS:
            kind = _KINDS[member.type]  # devices and FIFOs: listed, never created
        else:
            return  # GNU volume headers and the like carry no file
        self._put(self._info(path, member, kind, index, size=size, link_target=link_target))
        self._layer_paths.add(path)

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

    def _write(self, host: Path, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        mode = 0o755 if member.mode & 0o111 else 0o644
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as out:
            source = tar.extractfile(member)
            if source is not None:
                shutil.copyfileobj(source, out, _CHUNK)

    def _make_parents(self, path: str, index: int) -> None:
        """Make every ancestor of ``path`` a directory of the tree, replacing anything else."""
        parts = path.strip("/").split("/")[:-1]
        current = ""
        for part in parts:
            current += "/" + part
            existing = self.files.get(current)
            if existing is not None and existing.kind is FileKind.DIRECTORY:
                continue
            if existing is not None:
                self._remove(current)  # a symlink or file where a directory must be: never followed
            self.host(current).mkdir(_DIR_MODE)
            self._put(FileInfo(current, FileKind.DIRECTORY, _DIR_MODE, 0, 0, 0, layer=index))

    def _put(self, info: FileInfo) -> None:
        self.files[info.path] = info
        self._children[_parent(info.path)].add(info.path)
        if info.kind is FileKind.DIRECTORY:
            self._children.setdefault(info.path, set())

    def _remove(self, path: str) -> None:
        """Remove ``path`` (and everything below it) from the tree and the disk."""
        info = self.files.pop(path)
        self._children[_parent(path)].discard(path)
        if info.kind is FileKind.DIRECTORY:
            stack = [path]
            while stack:
                for child in self._children.pop(stack.pop(), set()):
                    self.files.pop(child, None)
                    stack.append(child)
            shutil.rmtree(self.host(path))
        elif os.path.lexists(self.host(path)):
            self.host(path).unlink()

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
        if path in self._layer_paths:
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
