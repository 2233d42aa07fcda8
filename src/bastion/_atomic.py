"""Replacing a file so that readers see the old or the new one, never a mix: the one way any package
writes a file in place (a temp file in the same directory, renamed over the target; rename(2) is
atomic within a file system).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["TMP_PREFIX", "atomic_file", "atomic_path", "atomic_write", "fsync_dir"]

TMP_PREFIX = ".tmp-"  # nothing reads these; Store.gc and oci's remove_abandoned remove abandoned ones


@contextmanager
def atomic_path(
    path: Path, *, durable: bool = True, mode: int = 0o644, exclusive: bool = False, prefix: str = TMP_PREFIX
) -> Iterator[Path]:
    """A temp file beside ``path`` (created empty, mode 0600 until complete) for the block to write;
    it replaces ``path`` when the block ends without an exception, and an exception (or an interrupt)
    leaves ``path`` untouched and removes it. With ``durable`` the content is on disk before the rename
    (file and directory synced); with ``exclusive`` the rename fails with :class:`FileExistsError` if
    ``path`` exists by then (a hard link never replaces a name) instead of replacing it."""
    fd, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        tmp.chmod(mode)
        if exclusive:
            os.link(tmp, path)
            tmp.unlink()
        else:
            tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


@contextmanager
def atomic_file(
    path: Path, *, durable: bool = True, mode: int = 0o644, exclusive: bool = False, prefix: str = TMP_PREFIX
) -> Iterator[BinaryIO]:
    """:func:`atomic_path`, opened for writing: the file is closed before it replaces ``path``."""
    with (
        atomic_path(path, durable=durable, mode=mode, exclusive=exclusive, prefix=prefix) as tmp,
        tmp.open("wb") as f,
    ):
        yield f


def atomic_write(
    path: Path, data: bytes, *, durable: bool = True, mode: int = 0o644, prefix: str = TMP_PREFIX
) -> None:
    """Replace ``path`` with ``data`` (:func:`atomic_path`)."""
    with atomic_file(path, durable=durable, mode=mode, prefix=prefix) as f:
        f.write(data)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
