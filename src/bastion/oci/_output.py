"""Writing a file the user named (``-o FILE``, an export archive, a key file) without harming what is there.

A regular file (or a path that does not exist yet) is replaced atomically: the content goes to a temp
file beside it, which is renamed over it only once complete, so an interrupted write leaves the old
content. Anything else is written straight through, never renamed over: rename(2) replaces whatever
directory entry has the new name (POSIX rename: "If the link named by the new argument exists, it
shall be removed"), so renaming over ``/dev/null`` run as root makes it a regular file for every
process on the machine. Character devices and FIFOs are opened and written; the process's own file
descriptors (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``: proc(5)) are written through a
duplicate, at their current offset. Directories, block devices and sockets are refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from bastion._atomic import atomic_file
from bastion.errors import InputError

NEW_FILE_MODE = 0o644
_MAX_LINKS = 40  # as the kernel's path walk: more links than this is ELOOP (path_resolution(7))


class OutputFile:
    """A file the user named, open for writing; ``with`` it, and the content is published when the block
    ends without an exception (a regular file is replaced whole, or left as it was on an exception).

    ``mode`` is the new file's permissions (default: a replaced file keeps its own, a new one gets
    0644); with ``exclusive``, an existing file of any kind is refused rather than replaced, also one
    that appears while writing. ``parents`` creates missing directories for a new file. Every failure
    to open, write or publish is an :class:`InputError` naming the path.
    """

    def __init__(
        self,
        path: Path,
        *,
        mode: int | None = None,
        exclusive: bool = False,
        parents: bool = False,
        durable: bool = True,
    ) -> None:
        self.path = path
        self._where = str(path)
        self._exclusive = exclusive
        self._atomic: AbstractContextManager[BinaryIO] | None = None
        descriptor = _own_descriptor(path)
        if descriptor is not None:
            self._file = self._straight(lambda: os.dup(descriptor))
            return
        try:
            info: os.stat_result | None = path.stat()
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise self._cannot("open", exc) from None
        if info is not None and exclusive:
            raise InputError("already exists: refusing to overwrite it", where=self._where)
        if info is None or stat.S_ISREG(info.st_mode):
            keep = stat.S_IMODE(info.st_mode) if info is not None else NEW_FILE_MODE
            self._file = self._replacing(path, mode if mode is not None else keep, parents, durable)
        elif stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
            flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY
            self._file = self._straight(lambda: os.open(path, flags))
        elif stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory", where=self._where, hint="give a file name")
        else:
            raise InputError(
                "not a regular file, character device or FIFO: refusing to write to it", where=self._where
            )

    def _replacing(self, path: Path, mode: int, parents: bool, durable: bool) -> BinaryIO:
        # A symbolic link is kept: its target is what gets replaced (in the target's directory).
        real = path.resolve()
        try:
            if parents:
                real.parent.mkdir(parents=True, exist_ok=True)
            atomic = atomic_file(
                real, durable=durable, mode=mode, exclusive=self._exclusive, prefix=f".{real.name}."
            )
            file = atomic.__enter__()
        except OSError as exc:
            raise self._cannot("create", exc) from None
        self._atomic = atomic
        return file

    def _straight(self, opener: Callable[[], int]) -> BinaryIO:
        try:
            return os.fdopen(opener(), "wb")
        except OSError as exc:
            raise self._cannot("open", exc) from None

    def _cannot(self, what: str, exc: OSError) -> InputError:
        return InputError(f"cannot {what} the output: {exc.strerror or exc}", where=self._where)

    def write(self, data: bytes, /) -> int:
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._cannot("write", exc) from None
        return len(data)

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        atomic = self._atomic
        if atomic is None:
            try:
                self._file.close()  # flushes: a late write error is still the output's
            except OSError as error:
                if exc_type is None:
                    raise self._cannot("write", error) from None
            return
        if exc_type is not None:
            atomic.__exit__(exc_type, exc, tb)  # removes the temp file; the caller's exception goes on
            return
        try:
            atomic.__exit__(None, None, None)
        except FileExistsError:
            raise InputError("already exists: refusing to overwrite it", where=self._where) from None
        except OSError as error:
            raise self._cannot("write", error) from None


def write_output(path: Path, data: bytes, *, mode: int | None = None, exclusive: bool = False) -> None:
    """Write ``data`` to the file the user named, as :class:`OutputFile` does."""
    with OutputFile(path, mode=mode, exclusive=exclusive) as out:
        out.write(data)


def _own_descriptor(path: Path) -> int | None:
    """The number of the process's file descriptor that ``path`` names through ``/proc/<pid>/fd``
    (``/dev/stdout`` links to ``/proc/self/fd/1``), or None. Such a path must not be renamed over or
    reopened: reopening a redirected stdout would truncate or overwrite what is already in it."""
    own = Path(f"/proc/{os.getpid()}/fd").resolve()
    current = path.absolute()
    for _ in range(_MAX_LINKS):
        if current.name.isdigit() and current.parent.resolve() == own:
            return int(current.name)
        try:
            target = current.readlink()
        except OSError:  # not a link (or not there): an ordinary path
            return None
        current = Path(os.path.normpath(current.parent / target))
    return None
