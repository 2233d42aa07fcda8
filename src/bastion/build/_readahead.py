"""Reading .deb archives ahead of the writer: decompression (which releases the GIL) overlaps
writing files to disk, while every file is still streamed in bounded chunks."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from bastion.debian._deb import DebArchive, DebEntry
from bastion.errors import InternalError

if TYPE_CHECKING:
    from bastion.build._assemble import PackageInput

CHUNK = 1 << 18
_AHEAD = 32  # chunks in flight between an archive reader and the writer: 8 MiB at most
_READERS = 2  # threads reading archives ahead of the writer


class Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Stopped(Exception):
    """The writer went away; the reading thread ends."""


class ReadAhead:
    """Reads the archives in ``_READERS`` threads, ahead of the writer, so that decompressing (which
    releases the GIL) overlaps writing to disk. Each package has its own queue of at most ``_AHEAD``
    chunks of ``CHUNK`` bytes, so files are still streamed, and the writer takes the packages in order.
    Items: per package ``("members", dict)``, then per entry ``("entry", DebEntry)`` followed, for a file,
    by ``("chunk", bytes)`` items ending with an empty one; ``("entry", None)`` ends the package. An
    exception in a reader is raised in the writer when it reaches that package."""

    def __init__(self, packages: Sequence[PackageInput]) -> None:
        self._packages = packages
        self._queues: list[queue.Queue[tuple[str, Any]]] = [queue.Queue(maxsize=_AHEAD) for _ in packages]
        self._current = 0
        self._next = iter(range(len(packages)))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="deb-reader", daemon=True) for _ in range(_READERS)
        ]

    def __enter__(self) -> ReadAhead:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _put(self, index: int, item: tuple[str, Any]) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queues[index].put(item, timeout=0.05)
                return
        raise Stopped

    def _run(self) -> None:
        while True:
            with self._lock:
                index = next(self._next, None)
            if index is None:
                return
            try:
                with DebArchive(self._packages[index].deb, usrmerge=True) as deb:
                    self._put(index, ("members", deb.control_members()))
                    for entry, stream in deb.iter_data():
                        self._put(index, ("entry", entry))
                        while stream is not None and (chunk := stream.read(CHUNK)):
                            self._put(index, ("chunk", chunk))
                        if stream is not None:
                            self._put(index, ("chunk", b""))
                self._put(index, ("entry", None))
            except Stopped:
                return
            except BaseException as exc:  # handed to the writer, which raises it
                with contextlib.suppress(Stopped):
                    self._put(index, ("error", exc))
                return

    def _get(self, kind: str) -> Any:
        got, value = self._queues[self._current].get()
        if got == "error":
            raise value
        if got != kind:
            raise InternalError(f"archive reader sent {got!r}, expected {kind!r}")
        if got == "entry" and value is None:
            self._current += 1
        return value

    def members(self) -> dict[str, bytes]:
        return cast(dict[str, bytes], self._get("members"))

    def entry(self) -> DebEntry | None:
        return cast(DebEntry | None, self._get("entry"))

    def read(self, size: int = -1, /) -> bytes:
        """The current file's next chunk; empty at its end."""
        return cast(bytes, self._get("chunk"))


class Bytes:
    """Bytes read in one go, as a stream for :meth:`_Builder._write`."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def read(self, size: int = -1, /) -> bytes:
        data, self._data = self._data or b"", None
        return data
