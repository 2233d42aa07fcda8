"""One version of an upstream project, read without running anything from it: a git commit (through
``git`` plumbing, with every hook, filter and fsmonitor switched off) or a release tarball (read in
memory, never extracted)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from bastion.config import DEFAULT_MAX_REVIEW_SIZE
from bastion.errors import InputError, InternalError, UnsafeArchiveError

#: Bounds on what one side of a review may hold; its bytes are BASTION_MAX_REVIEW_SIZE (bastion.config).
MAX_FILES = 50_000
MAX_COMMITS = 10_000
GIT_TIMEOUT = 120.0

# Settings that would make git run a program or rewrite what it shows, all switched off: hooks
# (githooks(5)), fsmonitor (git-config core.fsmonitor is a command), textconv and filters are only
# used by porcelain with --textconv/--filters, which we never pass; replace refs (git-replace(1)).
_GIT_CONFIG = (
    "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false",
    "-c", "protocol.allow=never", "-c", "log.showSignature=false", "-c", "diff.external=",
)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """A file of a snapshot: ``oid`` is its git blob id (computed for tarball members), ``link`` the
    target of a symbolic link (never followed)."""

    path: str
    oid: str
    size: int
    link: str | None = None


@dataclass
class Snapshot:
    label: str
    kind: str  # "git" or "tarball"
    entries: dict[str, Entry]
    _read: Callable[[list[Entry]], dict[str, bytes]]
    commit: str | None = None
    notes: list[str] = field(default_factory=list)

    def read(self, entries: list[Entry]) -> dict[str, bytes]:
        return self._read(entries)


def blob_id(data: bytes) -> str:
    """The git object id of ``data`` as a blob (gitformat-loose: "blob <size>\\0<data>"), so that a
    tarball member and a tagged file compare by content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


# -- git ----------------------------------------------------------------------------------------------


class Git:
    def __init__(self, repo: Path, *, max_bytes: int = DEFAULT_MAX_REVIEW_SIZE) -> None:
        if not repo.is_dir():
            raise InputError("not a directory", where=str(repo))
        self.repo = repo
        self.max_bytes = max_bytes
        self._env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            # git(1) GIT_ALLOW_PROTOCOL: set, it overrides every protocol.<name>.allow, which the reviewed
            # repository's own config could set to let a promisor remote (a partial clone's lazy fetch
            # of a missing object) run `ext::` commands; empty, no transport is allowed at all.
            "GIT_ALLOW_PROTOCOL": "",
            "GIT_NO_LAZY_FETCH": "1",
            "HOME": "/nonexistent",
            "LC_ALL": "C",
        }
        self.run("rev-parse", "--git-dir", what="a git repository")

    def run(self, *args: str, what: str, stdin: bytes | None = None) -> bytes:
        try:
            proc = subprocess.run(
                ["git", *_GIT_CONFIG, "-C", str(self.repo), *args], input=stdin, capture_output=True,
                env=self._env, timeout=GIT_TIMEOUT, check=False, stdin=None if stdin is not None else subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise InternalError("git is not installed (reviews of repositories need it)") from exc
        except subprocess.TimeoutExpired as exc:
            raise InputError(
                f"git took longer than {GIT_TIMEOUT:.0f} s reading {what}", where=str(self.repo)
            ) from exc
        if proc.returncode != 0:
            reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise InputError(
                f"cannot read {what}: {reason[-1] if reason else 'git failed'}", where=str(self.repo)
            )
        return proc.stdout

    def commit(self, ref: str) -> str:
        if not ref or ref.startswith("-") or "\n" in ref:
            raise InputError(f"not a usable ref: {ref!r}", where=str(self.repo))
        out = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", what=f"ref {ref!r}"
        )
        return out.decode("ascii").strip()

    def snapshot(self, ref: str) -> Snapshot:
        commit = self.commit(ref)
        out = self.run("ls-tree", "-r", "-z", "-l", "--full-tree", commit, what=f"the tree of {ref!r}")
        entries: dict[str, Entry] = {}
        notes: list[str] = []
        links: list[Entry] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid, size = meta.split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind != b"blob":
                notes.append(f"{path}: submodule not reviewed")
                continue
            entry = Entry(path, oid.decode(), int(size))
            if mode == b"120000":
                links.append(entry)
            entries[path] = entry
            if len(entries) > MAX_FILES:
                raise InputError(f"{ref}: more than {MAX_FILES} files", where=str(self.repo))
        if links:  # a link's target is its blob; kept as text, never followed
            targets = self.blobs(links)
            for e in links:
                entries[e.path] = Entry(
                    e.path, e.oid, e.size, link=targets[e.path].decode("utf-8", "replace")
                )
        return Snapshot(f"{ref}", "git", entries, self.blobs, commit=commit, notes=notes)

    def blobs(self, entries: list[Entry]) -> dict[str, bytes]:
        if sum(e.size for e in entries) > self.max_bytes:
            raise InputError(f"the changed files hold more than {self.max_bytes} bytes", where=str(self.repo))
        wanted = [e for e in entries]
        out = self.run("cat-file", "--batch", what="file contents",
                       stdin=b"".join(e.oid.encode() + b"\n" for e in wanted))  # fmt: skip
        result: dict[str, bytes] = {}
        pos = 0
        for e in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3:  # "<oid> missing": a shallow or partial clone lacks the object
                raise InputError(f"{e.path}: object {e.oid} is not in the repository (a partial clone?)",
                                 where=str(self.repo))  # fmt: skip
            size = int(header[2])
            result[e.path] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
        return result

    def log(self, old: str, new: str) -> list[tuple[str, str, list[str]]]:
        """(author email, name, files touched) of each commit in ``old..new``, and nothing run."""
        out = self.run("log", f"--max-count={MAX_COMMITS}", "--no-renames", "--format=%x1e%ae%x1f%an",
                       "--name-only", f"{old}..{new}", "--", what="the history")  # fmt: skip
        commits = []
        for block in out.decode("utf-8", "replace").split("\x1e")[1:]:
            head, _, files = block.partition("\n")
            email, _, name = head.partition("\x1f")
            commits.append((email.strip().lower(), name.strip(), [f for f in files.splitlines() if f]))
        return commits

    def authors(self, ref: str) -> tuple[dict[str, int], int]:
        """Each author of ``ref``'s history (email) with the time of their first commit, and the time of
        the newest commit (Unix seconds, author dates)."""
        out = self.run(
            "log", f"--max-count={MAX_COMMITS * 10}", "--format=%ae %at", ref, "--", what="the history"
        )
        first: dict[str, int] = {}
        newest = 0
        for line in out.decode("utf-8", "replace").splitlines():
            email, _, when = line.strip().rpartition(" ")
            moment = int(when) if when.isdigit() else 0
            key = email.lower()
            first[key] = min(first.get(key, moment), moment)
            newest = max(newest, moment)
        return first, newest


# -- tarballs -----------------------------------------------------------------------------------------


def tarball(path: Path, *, max_bytes: int = DEFAULT_MAX_REVIEW_SIZE) -> Snapshot:
    """Read a release tarball into memory, refusing what a release never needs: traversal, absolute
    names, devices, FIFOs, links out of the tree, and more than the bounds allow."""
    where = str(path)
    try:
        size = path.stat().st_size
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError("not a regular file", where=where)
        if size > max_bytes:
            raise InputError(f"larger than {max_bytes} bytes", where=where)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=where) from exc
    files, links = _members(data, where, max_bytes)
    prefix = _common_top(list(files) + list(links))
    entries: dict[str, Entry] = {}
    contents: dict[str, bytes] = {}
    for name, body in files.items():
        rel = name[len(prefix) :]
        entries[rel] = Entry(rel, blob_id(body), len(body))
        contents[rel] = body
    for name, target in links.items():
        rel = name[len(prefix) :]
        entries[rel] = Entry(rel, blob_id(target.encode()), len(target), link=target)
        contents[rel] = target.encode()
    return Snapshot(path.name, "tarball", entries, lambda wanted: {e.path: contents[e.path] for e in wanted})


def _normal_parts(path: PurePosixPath) -> list[str]:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return [".."]
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return parts


def _safe_name(name: str, where: str) -> str | None:
    if name.startswith("/") or ".." in PurePosixPath(name).parts:
        raise UnsafeArchiveError(f"member {name!r} would escape the tree", where=where)
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if not parts or parts[0] == "pax_global_header":
        return None
    return "/".join(parts)


def _common_top(names: list[str]) -> str:
    """``proj-1.2/`` when every member is under it (how release tarballs are laid out), else nothing."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return f"{tops.pop()}/"
    return ""


#: An extended header (pax, GNU long name or link) longer than this is refused: tarfile reads one whole
#: into memory before the member it describes is seen, so a gzip bomb of one would pass every other bound.
#: 64 KiB holds any path (PATH_MAX is 4 KiB) and any one extended attribute (XATTR_SIZE_MAX).
MAX_EXTENDED_HEADER = 64 * 1024
#: Extended headers one member may carry in a row (pax, global pax, long name, long link); tarfile reads
#: each chain by recursion, so an unbounded chain is a RecursionError.
MAX_EXTENDED_CHAIN = 8
#: Tar's own bytes beyond the members' (POSIX.1-2001 ustar: a 512-byte header and padding to 512 per
#: member, two zero blocks at the end; a pax header), allowed per member on top of ``max_bytes``.
_HEADER_BYTES = 2048
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
             tarfile.GNUTYPE_LONGLINK)  # fmt: skip


class _ExtendedHeaderTooLong(tarfile.HeaderError):
    pass


class _BoundedInfo(tarfile.TarInfo):
    def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        chain = getattr(tarfile, "_bastion_chain", 0) + 1 if self.type in _EXTENDED else 0
        tarfile._bastion_chain = chain  # type: ignore[attr-defined]
        if self.type in _EXTENDED and self.size > MAX_EXTENDED_HEADER:
            raise _ExtendedHeaderTooLong(
                f"an extended header of {self.size} bytes (more than {MAX_EXTENDED_HEADER})"
            )
        if chain > MAX_EXTENDED_CHAIN:
            raise _ExtendedHeaderTooLong(f"more than {MAX_EXTENDED_CHAIN} extended headers in a row")
        return super()._proc_member(tarfile)  # type: ignore[misc,no-any-return]


class _Capped(io.RawIOBase):
    """The decompressed stream, refused once it runs past ``cap`` bytes: what a compressed tarball
    expands to is bounded, not only what its member headers declare."""

    def __init__(self, raw: IO[bytes], cap: int, where: str) -> None:
        super().__init__()
        self._raw, self._cap, self._where = raw, cap, where

    def _check(self, position: int) -> None:
        if position > self._cap:
            raise InputError(f"decompresses to more than {self._cap} bytes", where=self._where)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        here = self._raw.tell()
        limit = self._cap + 1 - here
        data = self._raw.read(limit if size is None or size < 0 else min(size, max(limit, 0)))
        self._check(here + len(data))
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._raw.tell() + offset}.get(whence)
        if target is None:  # SEEK_END would decompress everything to find the end
            raise io.UnsupportedOperation("seek from the end")
        self._check(target)
        return self._raw.seek(target)

    def tell(self) -> int:
        return self._raw.tell()


def _decompressed(data: bytes) -> IO[bytes]:
    raw = io.BytesIO(data)
    if data.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]  # typeshed: GzipFile is a BufferedIOBase
    if data.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def _members(data: bytes, where: str, max_bytes: int) -> tuple[dict[str, bytes], dict[str, str]]:
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    total = 0
    stream = _Capped(_decompressed(data), max_bytes + (MAX_FILES + 2) * _HEADER_BYTES, where)
    try:
        with tarfile.open(fileobj=stream, mode="r:", tarinfo=_BoundedInfo) as archive:
            for count, member in enumerate(archive, 1):
                if count > MAX_FILES:
                    raise InputError(f"more than {MAX_FILES} members", where=where)
                name = _safe_name(member.name, where)
                if member.isdir() or name is None:
                    continue
                if member.issym() or member.islnk():
                    links[name] = _safe_link(name, member, where)
                    continue
                if not member.isreg():
                    raise UnsafeArchiveError(f"member {member.name!r} is a device, FIFO or other special file",
                                             where=where)  # fmt: skip
                total += member.size
                if total > max_bytes:
                    raise InputError(f"members hold more than {max_bytes} bytes", where=where)
                handle = archive.extractfile(member)
                files[name] = handle.read() if handle is not None else b""
    except _ExtendedHeaderTooLong as exc:
        raise InputError(f"{exc} before member {len(files) + len(links) + 1}", where=where) from exc
    # zlib, bz2 and lzma report corrupt streams as OSError, EOFError or ValueError.
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
        raise InputError(
            f"not a readable tar archive (plain, gzip, bzip2 or xz): {reason}", where=where
        ) from exc
    return files, links


def _safe_link(name: str, member: tarfile.TarInfo, where: str) -> str:
    target = PurePosixPath(name).parent / member.linkname
    if member.linkname.startswith("/") or ".." in _normal_parts(target):
        raise UnsafeArchiveError(f"member {member.name!r} links outside the tree", where=where)
    return member.linkname
