"""Work in a forked child (bastion._forked): its result, and the same work here when it delivers none."""

from __future__ import annotations

import os
import sys
import time

import pytest

from bastion._forked import Forked
from bastion.errors import InputError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork is used on Linux only")


def test_the_result_comes_from_the_child() -> None:
    parent = os.getpid()
    with Forked(lambda: (os.getpid(), b"x" * 3_000_000)) as job:
        pid, data = job.result()
    assert pid != parent and data == b"x" * 3_000_000  # more than a pipe buffer, and than one read
    assert job.delivered


def test_a_failing_child_makes_the_work_run_here_with_its_own_error() -> None:
    def work() -> int:
        raise InputError("bad profile", where="def.yaml", hint="fix it")

    with Forked(work) as job, pytest.raises(InputError) as raised:
        job.result()
    assert (raised.value.where, raised.value.hint) == ("def.yaml", "fix it")


def test_a_result_that_cannot_travel_is_made_here() -> None:
    parent = os.getpid()
    with Forked(lambda: (os.getpid(), lambda: None)) as job:  # a lambda does not pickle
        pid, _ = job.result()
    assert pid == parent and not job.delivered


def test_leaving_early_stops_and_reaps_the_child() -> None:
    def forever() -> None:
        while True:
            pass

    job = Forked(forever)
    pid = job._pid
    job.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_child_past_its_deadline_is_stopped_and_the_work_runs_here() -> None:
    parent = os.getpid()

    def slow_in_the_child() -> int:
        if os.getpid() != parent:
            time.sleep(30)
        return os.getpid()

    started = time.monotonic()
    with Forked(slow_in_the_child, deadline=0.5) as job:
        assert job.result() == parent and not job.delivered
    assert time.monotonic() - started < 10


def test_what_the_child_prints_goes_nowhere(capfd: pytest.CaptureFixture[str]) -> None:
    def noisy() -> int:
        print("from the child")
        print("to stderr", file=sys.stderr)
        return 7

    with Forked(noisy) as job:
        assert job.result() == 7 and job.delivered
    out, err = capfd.readouterr()
    assert "from the child" not in out and "to stderr" not in err
