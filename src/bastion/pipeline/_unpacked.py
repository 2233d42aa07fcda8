"""Packages unpacked once, kept by digest: a warm build reads no archive and creates no file.

Decompressing a package's ``data.tar`` (xz or zstd) is the same work in every build that uses it, so
it is done once per verified .deb and kept under ``<cache>/unpacked/v<FORMAT>/<sha[:2]>/<sha256>/``
(another layout is another directory, so Bastion versions sharing a cache never replace each
other's entries):

* ``data``: the contents of the package's regular files, back to back, in archive order;
* ``index.json``: the control members, every ``data.tar`` entry as the assembler needs it (path as
  installed with ``/usr`` merged, kind, mode, owners, mtime, link target, and a file's offset, size
  and SHA256 in ``data``), and the md5 of each conffile (dpkg's status needs it).

An entry is written into a temporary directory next to its final place and renamed into place
whole, so a reader sees a complete entry or none, and two builds unpacking the same package at
once both succeed (the second rename finds the first one's entry, which is identical). The key is
the digest the lock verified the .deb against, and the .deb is hashed again while it is unpacked
(the cache found it by that name and size only), so an entry is only ever made from verified bytes.
Reading one checks that its index names that digest and is well formed, and that every slice lies
inside ``data``; a damaged index is unpacked again and replaced. Damage inside ``data`` that keeps
its size is caught where file contents go into an image: each :class:`~bastion.oci.Slice` carries
its file's SHA256, checked whenever a layer part is made from it.

Every check :class:`~bastion.debian.DebArchive` makes on an archive (paths canonical, nothing
beneath a symlink of the package, hardlinks to earlier files, no device nodes) happens while the
entry is made; the assembler makes its checks across packages on the index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.debian import DebArchive, DebEntry
from bastion.errors import IntegrityError
from bastion.oci import Slice, remove_abandoned

if TYPE_CHECKING:
    from bastion.pipeline._assemble import PackageInput

__all__ = ["EarlyUnpack", "Unpacked", "unpack_all"]

FORMAT = 2  # of index.json and data; part of the path
_KINDS = frozenset({"file", "dir", "symlink", "hardlink"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Unpacked:
    """One package as the assembler reads it: control members, data entries with their content, and
    the md5 of each conffile (root-relative path -> hex)."""

    package: PackageInput
    members: dict[str, bytes]
    entries: tuple[tuple[DebEntry, Slice | None], ...]
    conffile_md5: dict[str, str]


def unpack_all(packages: Sequence[PackageInput], root: Path) -> list[Unpacked]:
    """Every package, from ``root`` when it was unpacked before, else unpacked now (in threads:
    xz and zstd release the GIL)."""
    found: list[Unpacked | None] = [_load(package, root) for package in packages]
    missing = [i for i, item in enumerate(found) if item is None]
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, min(len(missing), os.cpu_count() or 1))) as pool:
            for i, item in zip(missing, pool.map(lambda i: _unpack(packages[i], root), missing), strict=True):
                found[i] = item
    return [item for item in found if item is not None]


class EarlyUnpack:
    """Packages unpacked into the cache as their downloads complete, while others still download
    (a cold build; issue 19): :meth:`submit` is the fetcher's ``on_fetched``. Leaving the ``with``
    block waits for every unpacking started. Its errors are not raised here: :func:`unpack_all`
    unpacks again whatever was left undone and reports its errors where they belong."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="unpack")
        self._started: list[Future[None]] = []

    def submit(self, deb: Path, sha256: str) -> None:
        """Unpack the verified ``deb`` (whose SHA256 is ``sha256``) unless the cache holds it."""
        self._started.append(self._pool.submit(self._unpack, deb, sha256))

    def _unpack(self, deb: Path, sha256: str) -> None:
        if _read(_place(sha256, deb.name, self._root), sha256) is None:
            _make(deb, sha256, self._root)

    def __enter__(self) -> EarlyUnpack:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)
        for future in self._started:
            if not future.cancelled():
                future.exception()  # retrieved, so none is reported as never seen


def _place(digest: str, where: str, root: Path) -> Path:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise IntegrityError(f"malformed SHA256 digest {digest!r}", where=where)
    return root / f"v{FORMAT}" / digest[:2] / digest


def _load(package: PackageInput, root: Path) -> Unpacked | None:
    read = _read(_place(package.sha256, package.deb.name, root), package.sha256)
    return None if read is None else Unpacked(package, *read)


def _read(
    place: Path, sha256: str
) -> tuple[dict[str, bytes], tuple[tuple[DebEntry, Slice | None], ...], dict[str, str]] | None:
    """The members, entries and conffile md5s of the entry at ``place``; None when it is missing,
    of another format or digest, or damaged."""
    try:
        index = json.loads((place / "index.json").read_bytes())
        size = (place / "data").stat().st_size
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("format") != FORMAT or index.get("sha256") != sha256:
        return None
    data = place / "data"
    origin = f"unpacked-v{FORMAT}:{sha256}"  # the same .deb unpacked the same way: the same bytes
    entries: list[tuple[DebEntry, Slice | None]] = []
    try:
        for path, kind, mode, uid, gid, mtime, linkname, offset, length, digest in index["entries"]:
            numbers = (mode, uid, gid, mtime, offset, length)
            if (
                kind not in _KINDS
                or not _plain_path(path)
                or not isinstance(linkname, str)
                or "\0" in linkname
                or (kind == "hardlink" and not _plain_path(linkname))
                or not all(isinstance(n, int) and n >= 0 for n in numbers)
                or mode > 0o7777
            ):
                return None  # not what unpacking writes: damaged
            entry = DebEntry(path, kind, mode, uid, gid, mtime, length, linkname)
            if kind != "file":
                entries.append((entry, None))
            elif offset + length <= size and isinstance(digest, str) and len(digest) == 64:
                entries.append((entry, Slice(data, offset, length, origin, digest)))
            else:
                return None
        members = {name: text.encode("latin-1") for name, text in index["members"].items()}
        md5 = {str(path): str(value) for path, value in index["conffile_md5"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return members, tuple(entries), md5


def _plain_path(path: object) -> bool:
    """A root-relative path as :class:`~bastion.debian.DebArchive` gives them: no empty, ``.``
    or ``..`` component, no NUL."""
    return (
        isinstance(path, str)
        and bool(path)
        and "\0" not in path
        and not any(part in ("", ".", "..") for part in path.split("/"))
    )


def _check_digest(deb: Path, sha256: str) -> None:
    """The .deb is the one the lock names: the cache found it by digest and size only."""
    digest = hashlib.sha256()
    with deb.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise IntegrityError(
            f"SHA256 is {digest.hexdigest()}, the lock says {sha256}",
            where=deb.name,
            hint="the package cache is damaged: remove the file and fetch it again",
        )


def _unpack(package: PackageInput, root: Path) -> Unpacked:
    place = _make(package.deb, package.sha256, root)
    loaded = _load(package, root)
    if loaded is None:
        raise IntegrityError("its unpacked copy cannot be read back", where=str(place))
    return loaded


def _make(deb_path: Path, sha256: str, root: Path) -> Path:
    """The cache entry of the .deb at ``deb_path`` (see the module docs); returns its place."""
    place = _place(sha256, deb_path.name, root)
    place.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(place.parent)  # what a killed build left here
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=place.parent))
    try:
        rows: list[list[Any]] = []
        md5: dict[str, str] = {}
        _check_digest(deb_path, sha256)
        with DebArchive(deb_path, usrmerge=True) as deb, (work / "data").open("wb") as out:
            members = deb.control_members()
            conffiles = {
                line.split()[-1].lstrip("/")
                for line in members.get("conffiles", b"").decode("utf-8", "surrogateescape").splitlines()
                if line.strip()
            }
            offset = 0
            for entry, stream in deb.iter_data():
                start = offset
                content = hashlib.sha256()
                if stream is not None:
                    digest = hashlib.md5(usedforsecurity=False) if entry.path in conffiles else None
                    while chunk := stream.read(_CHUNK):
                        out.write(chunk)
                        content.update(chunk)
                        offset += len(chunk)
                        if digest is not None:
                            digest.update(chunk)
                    if digest is not None:
                        md5[entry.path] = digest.hexdigest()
                e = entry
                rows.append(
                    [e.path, e.kind, e.mode, e.uid, e.gid, e.mtime, e.linkname, start, offset - start,
                     content.hexdigest() if stream is not None else ""]
                )  # fmt: skip
        index = {
            "format": FORMAT,
            "sha256": sha256,
            "members": {name: data.decode("latin-1") for name, data in members.items()},
            "entries": rows,
            "conffile_md5": md5,
        }
        (work / "index.json").write_text(json.dumps(index, separators=(",", ":")))
        try:
            work.rename(place)
        except OSError:  # an entry is there: another build's (identical), or a damaged one
            if _read(place, sha256) is None:
                trash = Path(tempfile.mkdtemp(prefix=".tmp-", dir=place.parent))
                place.rename(trash)  # rename(2) may replace an empty directory
                work.rename(place)
                shutil.rmtree(trash, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return place
