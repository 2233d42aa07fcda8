"""Pure-Python work run in a forked child process, beside the parent's own work.

CPython runs one thread of Python code at a time, and what a build does after writing an image is
mostly Python (a CycloneDX document, compliance reports). A child made by ``fork`` starts with the
parent's memory, so the work needs nothing sent to it; only its result (bytes, or other plain data)
comes back, pickled, through a pipe.

The child is an accelerator and nothing more: when it cannot deliver a result (the work raised,
the child died, the result did not unpickle), :meth:`Forked.result` runs the same work in this
process, so a failure surfaces as the exception the work raises here, with its full context. The
child never returns into the caller's code: it leaves with ``os._exit``, running no cleanup
(temporary directories, locks and buffered output stay the parent's). Without ``os.fork`` (not
Linux), the work simply runs when its result is asked for.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")

__all__ = ["Forked"]


class Forked(Generic[T]):
    """``work`` started in a child process now; :meth:`result` waits for what it returned. Use as a
    context manager, so that a parent leaving early does not leave the child behind."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._pid = 0
        self._read = -1
        if sys.platform != "linux":
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns from here
            code = 1
            try:
                os.close(read)
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
            with os.fdopen(self._read, "rb") as pipe:
                self._read = -1
                data = pipe.read()
            _, status = os.waitpid(self._pid, 0)
            self._pid = 0
            if os.waitstatus_to_exitcode(status) == 0:
                with contextlib.suppress(Exception):
                    return cast(T, pickle.loads(data))  # noqa: S301 - our own child, through a private pipe
        return self._work()

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
