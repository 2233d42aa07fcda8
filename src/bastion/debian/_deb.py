"""Read Debian binary packages (.deb) in Python, without dpkg.

deb(5): an ``ar`` archive holding ``debian-binary`` ("2.x"), ``control.tar[.gz|.xz|.zst]`` and
``data.tar[.gz|.xz|.zst]`` in that order; members whose names start with ``_`` may come in between and
are ignored, as dpkg-deb(1) does. Everything is streamed: an archive member is read with ``os.pread``
straight from the file and decompressed on the fly, never held in memory as a whole.

Entry paths are refused rather than sanitised when they could escape the root or create something an
image never contains (devices, FIFOs). Symlink *targets* are returned verbatim and never refused:
absolute targets are legitimate in Debian (``/etc/alternatives/...``); whoever writes the tree must never
follow a symlink.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal, NamedTuple, cast

import zstandard

from bastion.errors import InputError, IntegrityError, UnsafeArchiveError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["DebArchive", "DebEntry", "read_control"]

# The top-level directories merged into /usr (bookworm and later, DEP 17); the assembler creates the
# compat symlinks (``bin -> usr/bin`` ...) itself.
_MERGED = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32"})
_COMPRESSIONS = ("", ".gz", ".xz", ".zst")
_CONTROL_LIMIT = 64 << 20  # control.tar is metadata; refuse a bomb instead of filling memory
_BUFSIZE = 1 << 16
# Everything a corrupt or truncated stream can raise while being decompressed or parsed.
_CORRUPT = (tarfile.TarError, lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError, zstandard.ZstdError)


@dataclass(frozen=True)
class DebEntry:
    """One entry of ``data.tar``, with its path canonicalised relative to the root."""

    path: str
    kind: Literal["file", "dir", "symlink", "hardlink"]
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int
    linkname: str


class _Member(NamedTuple):
    name: str
    offset: int
    size: int


def _show(name: str) -> str:
    """A member name fit for a one-line message."""
    return name if name.isprintable() else ascii(name)[1:-1]


def _canonical(name: str, where: str, *, what: str = "entry", usrmerge: bool = False) -> str:
    """``./usr//bin/./x`` -> ``usr/bin/x``; the root itself is ``""``. Refuses what could escape."""
    reason = None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if "\0" in name:
        reason = "contains a NUL byte"
    elif name.startswith("/"):
        reason = "is absolute"
    elif ".." in parts:
        reason = "has a '..' segment"
    if reason:
        raise UnsafeArchiveError(f"{what} {reason}", where=where)
    if usrmerge and parts and parts[0] in _MERGED:
        parts.insert(0, "usr")
    return "/".join(parts)


class _MemberReader(io.RawIOBase):
    """One ar member as a read-only stream, read with ``pread`` so several streams can share the fd."""

    def __init__(self, read_at: Callable[[int, int], bytes], member: _Member) -> None:
        super().__init__()
        self._read_at = read_at
        self._pos = member.offset
        self._end = member.offset + member.size

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = self._end - self._pos if size is None or size < 0 else min(size, self._end - self._pos)
        data = self._read_at(self._pos, want) if want > 0 else b""
        self._pos += len(data)
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


class _EntryReader(io.BufferedIOBase):
    """A data.tar file's contents; decoding errors become :class:`IntegrityError`, and it stops working
    once the iteration moves on (the stream underneath has moved past it)."""

    def __init__(self, inner: IO[bytes], where: str) -> None:
        super().__init__()
        self._inner: IO[bytes] | None = inner
        self._where = where

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._inner is None:
            raise ValueError("entry read after the iteration moved on")
        with _integrity(self._where):
            return self._inner.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def expire(self) -> None:
        self._inner = None


@contextlib.contextmanager
def _integrity(where: str) -> Iterator[None]:
    try:
        yield
    except _CORRUPT as exc:
        raise IntegrityError(
            f"corrupt or truncated archive ({str(exc) or type(exc).__name__})", where=where
        ) from exc


def _zstd_complete(read_at: Callable[[int, int], bytes], start: int, size: int) -> bool:
    """Whether ``size`` bytes at ``start`` are whole zstd frames, walking the frame and block headers.

    python-zstandard's stream reader stops quietly at a truncated frame, so check the structure first
    (RFC 8878 section 3.1.1 frames and blocks, 3.1.2 skippable frames); contents and checksums are
    checked by the decompressor.
    """
    pos, end = start, start + size
    while pos < end:
        head = read_at(pos, min(8, end - pos))
        magic = int.from_bytes(head[:4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F and len(head) == 8:  # skippable frame
            pos += 8 + int.from_bytes(head[4:8], "little")
            continue
        if magic != 0xFD2FB528 or len(head) < 5:
            return False
        descriptor = head[4]
        single_segment = descriptor >> 5 & 1
        pos += 5 + (1 - single_segment) + (0, 1, 2, 4)[descriptor & 3]
        pos += (single_segment, 2, 4, 8)[descriptor >> 6]
        while True:
            block = read_at(pos, min(3, max(end - pos, 0)))
            if len(block) < 3:
                return False
            header = int.from_bytes(block, "little")
            pos += 3 + (1 if header >> 1 & 3 == 1 else header >> 3)  # an RLE block has one byte
            if header & 1:  # Last_Block
                break
        pos += 4 * (descriptor >> 2 & 1)  # Content_Checksum
    return pos == end and size > 0


class DebArchive:
    """A .deb opened for reading; use it as a context manager or call :meth:`close`.

    With ``usrmerge=True`` (bookworm and later) entries under the top-level ``bin``, ``sbin``, ``lib*``
    are reported under ``usr/``.
    """

    def __init__(self, path: Path, *, usrmerge: bool = False, name: str | None = None) -> None:
        # ``name`` is what messages call the package (a cache file's own name means nothing to a user).
        self._name = name or path.name
        self._usrmerge = usrmerge
        self._control: dict[str, bytes] | None = None
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", where=self._name) from exc
        try:
            self._control_member, self._data_member = self._index()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DebArchive:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _read_at(self, offset: int, size: int) -> bytes:
        if self._fd < 0:  # a stream that outlived close() must not read a reused descriptor
            raise ValueError("archive is closed")
        return os.pread(self._fd, size, offset)

    def _index(self) -> tuple[_Member, _Member]:
        """Walk the ar headers (ar(5): "!<arch>\\n", then 60-byte headers, members padded to even).

        A dozen lines of our own instead of ``debian.arfile``: we need offsets for ``pread`` and our own
        errors, not file objects.
        """
        if self._read_at(0, 8) != b"!<arch>\n":
            raise IntegrityError("not a Debian package (no ar archive header)", where=self._name)
        file_size = os.fstat(self._fd).st_size
        members: list[_Member] = []
        offset = 8
        while offset < file_size:
            header = self._read_at(offset, 60)
            size_field = header[48:58].strip()
            if len(header) < 60 or header[58:60] != b"`\n" or not size_field.isdigit():
                raise IntegrityError(f"corrupt ar header at byte {offset}", where=self._name)
            # dpkg writes "debian-binary   ", GNU ar "debian-binary/": strip both (dpkg's ar.c does).
            name = header[:16].decode("ascii", "replace").rstrip(" ").removesuffix("/")
            size = int(size_field)
            if offset + 60 + size > file_size:
                raise IntegrityError(
                    f"truncated archive: member {_show(name)} is cut short", where=self._name
                )
            members.append(_Member(name, offset + 60, size))
            offset += 60 + size + (size & 1)
        # deb(5): debian-binary first, then control.tar, then data.tar; "_" members are optional extras.
        if not members or members[0].name != "debian-binary":
            raise IntegrityError("not a Debian package (no debian-binary member first)", where=self._name)
        version = self._read_at(members[0].offset, min(members[0].size, 64))
        if not re.fullmatch(rb"2\.\d+\n?", version.split(b"\n", 1)[0]):
            raise IntegrityError(f"unsupported package format {version[:16]!r}, want 2.x", where=self._name)
        wanted = [member for member in members[1:] if not member.name.startswith("_")][:2]
        for member, prefix in zip(wanted, ("control.tar", "data.tar"), strict=False):
            if not member.name.startswith(prefix):
                raise IntegrityError(f"unexpected member {_show(member.name)}", where=self._name)
            if member.name.removeprefix(prefix) not in _COMPRESSIONS:
                raise UnsafeArchiveError("unknown compression", where=f"{self._name}:{_show(member.name)}")
        if len(wanted) < 2:
            raise IntegrityError("no control.tar and data.tar members", where=self._name)
        return wanted[0], wanted[1]

    @contextlib.contextmanager
    def _tar(self, member: _Member) -> Iterator[tarfile.TarFile]:
        """``member`` as a stream-mode tar, drained at the end so trailing checksums are verified."""
        where = f"{self._name}:{member.name}"
        raw = cast(IO[bytes], _MemberReader(self._read_at, member))
        with contextlib.ExitStack() as stack:
            stream: IO[bytes]
            if member.name.endswith(".gz"):
                stream = cast(IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")))
            elif member.name.endswith(".xz"):
                stream = cast(IO[bytes], stack.enter_context(lzma.LZMAFile(raw, format=lzma.FORMAT_XZ)))
            elif member.name.endswith(".zst"):
                if not _zstd_complete(self._read_at, member.offset, member.size):
                    raise IntegrityError("corrupt or truncated zstd stream", where=where)
                decompressor = zstandard.ZstdDecompressor()
                reader = decompressor.stream_reader(raw, read_size=_BUFSIZE, read_across_frames=True)
                stream = cast(IO[bytes], stack.enter_context(reader))
            else:
                stream = raw
            with _integrity(where):
                tar = stack.enter_context(
                    tarfile.open(
                        fileobj=stream,
                        mode="r|",
                        bufsize=_BUFSIZE,
                        encoding="utf-8",
                        errors="surrogateescape",
                    )
                )
            yield tar
            with _integrity(where):
                while stream.read(_BUFSIZE):
                    pass

    def _next(self, tar: tarfile.TarFile, where: str) -> tarfile.TarInfo | None:
        with _integrity(where):
            return tar.next()

    def control_members(self) -> dict[str, bytes]:
        """The files of control.tar by name (``control``, ``md5sums``, ``postinst`` ...)."""
        if self._control is None:
            members: dict[str, bytes] = {}
            total = 0
            where = f"{self._name}:{self._control_member.name}"
            with self._tar(self._control_member) as tar:
                while (info := self._next(tar, where)) is not None:
                    name = _canonical(info.name, f"{where}:{_show(info.name)}")
                    if info.isdir():
                        continue
                    if not info.isreg():
                        raise UnsafeArchiveError(
                            "control member is not a regular file", where=f"{where}:{_show(info.name)}"
                        )
                    total += info.size
                    if total > _CONTROL_LIMIT:
                        raise IntegrityError(f"control.tar exceeds {_CONTROL_LIMIT >> 20} MiB", where=where)
                    with _integrity(where):
                        members[name] = cast(IO[bytes], tar.extractfile(info)).read()
            self._control = members
        return dict(self._control)

    def control(self) -> bytes:
        """The ``control`` file, verbatim."""
        control = self.control_members().get("control")
        if control is None:
            raise IntegrityError("no control file in control.tar", where=self._name)
        return control

    def iter_data(self) -> Iterator[tuple[DebEntry, IO[bytes] | None]]:  # noqa: PLR0912, PLR0915  (every data.tar member check, in reading order)
        """The entries of data.tar in archive order, with a stream for each file.

        A stream is valid only until the next iteration. The root directory itself is skipped.
        """
        where = f"{self._name}:{self._data_member.name}"
        files: set[str] = set()  # for hardlinks: their target must be an earlier file of this archive
        symlinks: set[str] = set()  # for entries that would be written through one of them
        with self._tar(self._data_member) as tar:
            while (info := self._next(tar, where)) is not None:
                entry_where = f"{where}:{_show(info.name)}"
                path = _canonical(info.name, entry_where, usrmerge=self._usrmerge)
                if "\0" in info.linkname:
                    raise UnsafeArchiveError("link target contains a NUL byte", where=entry_where)
                parts = path.split("/")
                if symlinks and any("/".join(parts[:depth]) in symlinks for depth in range(1, len(parts))):
                    raise UnsafeArchiveError(
                        "entry lies beneath a symlink of this archive", where=entry_where
                    )
                if info.isdir():
                    if not path:
                        continue
                    kind: Literal["file", "dir", "symlink", "hardlink"] = "dir"
                elif not path:
                    raise UnsafeArchiveError("entry would replace the root directory", where=entry_where)
                elif self._usrmerge and len(parts) == 2 and parts[0] == "usr" and parts[1] in _MERGED:
                    # A top-level bin, lib ... that is not a directory. base-files ships the compat
                    # symlinks since trixie; the assembler makes them, anything else would clash.
                    if info.issym() and info.linkname.strip("/") in (path, f"./{path}"):
                        continue
                    raise UnsafeArchiveError(f"entry would replace merged /{path}", where=entry_where)
                elif info.isreg():
                    kind = "file"
                    files.add(path)
                elif info.issym():
                    kind = "symlink"  # target verbatim, see the module docstring
                    symlinks.add(path)
                elif info.islnk():
                    kind = "hardlink"
                    what = f"hardlink target {_show(info.linkname)}"
                    target = _canonical(info.linkname, entry_where, what=what, usrmerge=self._usrmerge)
                    if target not in files:
                        raise UnsafeArchiveError(
                            f"hardlink target {_show(target)} is not an earlier file of this archive",
                            where=entry_where,
                        )
                elif info.ischr() or info.isblk():
                    raise UnsafeArchiveError("device node", where=entry_where)
                elif info.isfifo():
                    raise UnsafeArchiveError("FIFO", where=entry_where)
                else:
                    raise UnsafeArchiveError(f"unsupported tar entry type {info.type!r}", where=entry_where)
                entry = DebEntry(
                    path=path,
                    kind=kind,
                    mode=info.mode & 0o7777,
                    uid=info.uid,
                    gid=info.gid,
                    mtime=int(info.mtime),
                    size=info.size if kind == "file" else 0,
                    linkname=target if kind == "hardlink" else info.linkname if kind == "symlink" else "",
                )
                if kind != "file":
                    yield entry, None
                    continue
                with _integrity(entry_where):
                    inner = tar.extractfile(info)
                reader = _EntryReader(cast(IO[bytes], inner), entry_where)
                try:
                    yield entry, cast(IO[bytes], reader)
                finally:
                    reader.expire()


def read_control(path: Path) -> bytes:
    """The ``control`` file of the .deb at ``path``, verbatim."""
    with DebArchive(path) as deb:
        return deb.control()
