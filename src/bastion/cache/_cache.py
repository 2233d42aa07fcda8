"""A content-addressed file cache.

A file enters the cache only after its SHA256 and size have been checked, and only by an atomic
rename of a complete temporary file in the same directory: a reader sees a whole, verified file or
nothing, and an interrupted download leaves at most a ``.tmp-*`` file that is never read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bastion._atomic import atomic_path
from bastion.errors import IntegrityError

#: Checks a complete, digest-verified temporary file before it enters the cache; raises to refuse it.
Validator = Callable[[Path, str], None]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "sha256"

    def path_for(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            # The digest comes from signed metadata, but never let it name a path outside the cache.
            raise IntegrityError(f"malformed SHA256 digest {sha256!r}")
        return self._blobs / sha256[:2] / sha256

    def lookup(self, sha256: str, size: int | None = None) -> Path | None:
        """The cached file with this digest (and size), or None."""
        path = self.path_for(sha256)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        if size is not None and stat.st_size != size:
            return None
        return path

    @contextmanager
    def writer(
        self, sha256: str, size: int | None, *, where: str, validate: Validator | None = None
    ) -> Iterator[HashingWriter]:
        """Write a file that enters the cache only if its digest and size match on close, and
        ``validate`` (given the complete temporary file) raises nothing."""
        target = self.path_for(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not synced, as cache files are not (oci.write_cache_file): one lost to a crash is fetched again.
        with atomic_path(target, durable=False) as tmp:
            with tmp.open("wb") as raw:
                hashing = HashingWriter(raw)
                yield hashing
            if size is not None and hashing.size != size:
                raise IntegrityError(
                    f"size is {hashing.size} bytes, the signed index says {size}", where=where
                )
            actual = hashing.hexdigest()
            if actual != sha256:
                raise IntegrityError(f"SHA256 is {actual}, the signed index says {sha256}", where=where)
            if validate is not None:
                validate(tmp, where)

    def put_bytes(self, data: bytes, sha256: str, *, where: str, validate: Validator | None = None) -> Path:
        with self.writer(sha256, len(data), where=where, validate=validate) as out:
            out.write(data)
        return self.path_for(sha256)


class HashingWriter:
    """Counts and hashes what passes through to the underlying file."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        written: int = self._raw.write(data)
        return written

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
