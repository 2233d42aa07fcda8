"""Crash-safe file writing for the store: temp file in the target directory, fsync, rename."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bastion._atomic import TMP_PREFIX, atomic_write, fsync_dir
from bastion.errors import IntegrityError
from bastion.oci._model import Descriptor

ABANDONED_AFTER = 24 * 3600.0  # a temp entry this old belongs to no running writer
CHUNK = 1024 * 1024


class BlobWriter:
    """Streams one blob into a temp file in ``blobs_dir``, hashing as it goes; :meth:`commit` publishes it.

    Leaving the ``with`` block without a commit (an exception, an interrupted build) removes the temp
    file; a killed process leaves it behind, which is harmless.
    """

    def __init__(self, blobs_dir: Path, media_type: str) -> None:
        self._dir = blobs_dir
        self._media_type = media_type
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=blobs_dir)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self, expected_digest: str | None = None, expected_size: int | None = None) -> Descriptor:
        """Check the content against what the caller expects and move it to its content address."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest, size = self.digest, self.size
        if (expected_digest is not None and expected_digest != digest) or (
            expected_size is not None and expected_size != size
        ):
            self.abort()
            want = (
                f"{expected_digest or 'any digest'} ({'?' if expected_size is None else expected_size} bytes)"
            )
            raise IntegrityError(f"blob content is {digest} ({size} bytes), expected {want}")
        publish(self.path, self._dir / digest.removeprefix("sha256:"))
        self._done = True
        return Descriptor(self._media_type, digest, size)

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            self.abort()


def publish(tmp: Path, final: Path) -> None:
    """Rename a complete, synced temp file to its content address (or drop it if already there)."""
    if final.exists():
        tmp.unlink()
        return
    tmp.chmod(0o644)
    tmp.replace(final)
    fsync_dir(final.parent)


def hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def write_cache_file(path: Path, data: bytes) -> None:
    """Write a cache file: its directory made as needed and cleared of what a killed writer left,
    the file replaced atomically but not synced (losing one to a crash only costs making it again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path.parent)
    atomic_write(path, data, durable=False)


def remove_abandoned(directory: Path, *, older_than: float = ABANDONED_AFTER) -> None:
    """Remove the temp files and directories (``TMP_PREFIX``) a killed writer left in ``directory``,
    once they are ``older_than`` seconds old; a younger one may still be being written."""
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink()
        except FileNotFoundError:
            continue  # another process removed it first
