"""Pure-Python work run in a forked child process, beside the parent's own work.

CPython runs one thread of Python code at a time, and what a build does after writing an image is
mostly Python (a CycloneDX document, compliance reports). A child made by ``fork`` starts with the
parent's memory, so the work needs nothing sent to it; only its result (bytes, or other plain data)
comes back, pickled, through a pipe.

The child is an accelerator and nothing more: when it cannot deliver a result (the fork failed, the
work raised, the child died or took longer than ``deadline``, the result did not unpickle),
:meth:`Forked.result` runs the same work in this process, so a failure surfaces as the exception the
work raises here, with its full context (a failing work therefore runs twice: it must have no side
effects). The child never returns into the caller's code: it leaves with ``os._exit``, running no
cleanup (temporary directories, locks and buffered output stay the parent's). It gets new
``sys.stdout`` and ``sys.stderr`` on ``/dev/null``: the parent's may be locked by a thread that
does not exist in the child (rich's progress refresh), and a warning written there would wait
forever. Without ``os.fork`` (not Linux), the work simply runs when its result is asked for.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar, cast

T = TypeVar("T")

__all__ = ["Forked"]


class Forked(Generic[T]):
    """``work`` started in a child process now; :meth:`result` waits for what it returned. Use as a
    context manager, so that a parent leaving early does not leave the child behind."""

    def __init__(self, work: Callable[[], T], *, deadline: float = 900.0) -> None:
        self._work = work
        self._pid = 0
        self._read = -1
        self._deadline = time.monotonic() + deadline
        self.delivered = False  # whether :meth:`result` came from the child
        if sys.platform != "linux":
            return
        try:
            read, write = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:  # no process to spare: the work runs here when asked
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: never returns from here
            code = 1
            try:
                os.close(read)
                sys.stdout = sys.stderr = Path(os.devnull).open("w")  # noqa: SIM115 - closed by os._exit
                data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self._pid, self._read = pid, read

    def result(self) -> T:
        """What the work returned in the child, or (when the child delivered nothing) here."""
        if self._pid:
            data = self._receive()
            if data is not None:
                with contextlib.suppress(Exception):
                    value = cast(T, pickle.loads(data))  # noqa: S301 - our own child, through a private pipe
                    self.delivered = True
                    return value
        return self._work()

    def _receive(self) -> bytes | None:
        """The child's whole output if it ended well in time; None (and the child gone) otherwise."""
        chunks: list[bytes] = []
        while (left := self._deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self._read], [], [], left)
            if not ready:
                break
            chunk = os.read(self._read, 1 << 20)
            if not chunk:  # the child closed its end: done
                os.close(self._read)
                self._read = -1
                _, status = os.waitpid(self._pid, 0)
                self._pid = 0
                return b"".join(chunks) if os.waitstatus_to_exitcode(status) == 0 else None
            chunks.append(chunk)
        self.close()  # too slow: stopped, and the work runs here
        return None

    def close(self) -> None:
        """Stop and reap the child if its result was never asked for."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = 0

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
