"""A job's lease while a worker runs it, and the test-only pause points of a job.

The lease (docs/architecture.md, Decisions: the lease and its numbers): :meth:`Jobs.claim` gives the
job to one worker until ``lease_until``; :class:`Heartbeat` moves that on every quarter of the lease
from a thread beside the job, so a live worker never loses a job however long its build runs, and a
worker killed with ``kill -9`` stops renewing: its lease expires and the job's next delivery takes it
over. ``lost`` turns true when a renewal finds the job taken over (this worker stalled past its lease).

Pause points (test-only; no user sets these): with ``BASTION_FACTORY_TEST_PAUSE=POINT[,POINT...]``
and ``BASTION_FACTORY_TEST_MARKERS=DIR``, a job reaching ``POINT`` the first time writes
``DIR/job-<id>-<POINT>`` (holding the process id) and waits until ``DIR/job-<id>-<POINT>.go`` exists
(at most :data:`PAUSE_LIMIT` seconds), so a fault test can kill a worker, or restart the broker,
at a known point instead of after a guessed delay. A later attempt of the job finds the marker and
does not pause. The points: ``build`` (the pipeline started assembling: mid-build), ``pushed`` (the
image and its attestations are in the registry, not yet verified, recorded or tagged), ``tags``
(the publication is recorded, the moving tags not yet moved).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from bastion.errors import BastionError
from bastion.factory._jobs import Jobs

__all__ = ["PAUSE_LIMIT", "PAUSE_POINTS", "Heartbeat", "pause", "worker_id"]

PAUSE_POINTS = ("build", "pushed", "tags")
PAUSE_LIMIT = 600.0


def worker_id() -> str:
    """This process's name in a job's ``worker`` column: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Renews ``worker``'s lease on ``job_id`` every ``lease / 4`` seconds until the block ends."""

    def __init__(self, jobs: Jobs, job_id: int, worker: str, lease: int) -> None:
        self.jobs, self.job_id, self.worker, self.lease = jobs, job_id, worker, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(max(1.0, self.lease / 4)):
            try:
                if not self.jobs.renew(self.job_id, self.worker, self.lease):
                    self.lost = True
                    return
            except BastionError:
                # The database is away (restarting): try again at the next beat; three missed beats
                # still leave a quarter of the lease.
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


def pause(job_id: int, point: str) -> None:
    """The test-only pause point ``point`` of job ``job_id`` (this module's docstring)."""
    points = os.environ.get("BASTION_FACTORY_TEST_PAUSE", "")
    markers = os.environ.get("BASTION_FACTORY_TEST_MARKERS", "")
    if not markers or point not in points.split(","):
        return
    marker = Path(markers) / f"job-{job_id}-{point}"
    try:
        with marker.open("x", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
    except FileExistsError:
        return  # paused here before: a later attempt goes on
    go = marker.with_name(marker.name + ".go")
    deadline = time.monotonic() + PAUSE_LIMIT
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
