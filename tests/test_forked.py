"""Work in a forked child (bastion._forked): its result, and the same work here when it delivers none."""

from __future__ import annotations

import os
import sys

import pytest

from bastion._forked import Forked
from bastion.errors import InputError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork is used on Linux only")


def test_the_result_comes_from_the_child() -> None:
    parent = os.getpid()
    with Forked(lambda: (os.getpid(), b"x" * 300_000)) as job:
        pid, data = job.result()
    assert pid != parent and data == b"x" * 300_000  # more than a pipe buffer


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
    assert pid == parent


def test_leaving_early_stops_and_reaps_the_child() -> None:
    def forever() -> None:
        while True:
            pass

    job = Forked(forever)
    pid = job._pid
    job.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
