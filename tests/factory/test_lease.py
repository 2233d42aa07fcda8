"""A job's lease (migration 0004): one worker at a time runs a job; a delivery of a job whose lease
is live is held off, one whose lease expired takes it over, and the worker that lost it can neither
publish nor finish it. On SQLite and on a real PostgreSQL 15, where claims race from threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.factory import Jobs, LeaseLost, open_state
from tests.factory.test_state import url  # noqa: F401  (the sqlite / postgresql database fixture)


def _job(jobs: Jobs, image: str = "net") -> int:
    job_id, created = jobs.open(image=image, recipe="sha256:" + "a" * 64, catalog="/c", reason="r", diff="d",
                                priority=0, approved=True)  # fmt: skip
    assert created
    return job_id


def test_a_live_lease_holds_off_a_second_delivery_and_an_expired_one_passes(url: str, tmp_path: Path) -> None:  # noqa: F811
    with open_state(Settings(tmp_path), url) as state:
        jobs = Jobs(state.engine)
        job = _job(jobs)
        first = jobs.claim(job, "host:1", 120, "/log")
        assert first.outcome == "claimed" and first.row.attempts == 1 and first.row.worker == "host:1"
        held = jobs.claim(job, "host:2", 120, "/log")
        assert held.outcome == "held" and 100 <= held.wait <= 121 and held.row.attempts == 1
        assert jobs.renew(job, "host:1", 120) and not jobs.renew(job, "host:2", 120)

        jobs.update(job, lease_until="2000-01-01T00:00:00Z")  # host:1 stopped beating long ago
        taken = jobs.claim(job, "host:2", 120, "/log")
        assert taken.outcome == "claimed" and taken.row.attempts == 2 and taken.row.worker == "host:2"
        # The original, back from a stall: its heartbeat finds the job gone, and it can neither
        # publish nor finish it.
        assert not jobs.renew(job, "host:1", 120)
        build = jobs.record_build(job, "net", "sha256:" + "a" * 64, "sha256:" + "b" * 64, "/log")
        with pytest.raises(LeaseLost, match="host:2"):
            jobs.publish(job, build, "net", "r.test/bastion/net", "sha256:" + "b" * 64, ["latest"], "host:1")
        jobs.finish(job, "failed", "stalled", worker="host:1")
        assert jobs.get(job).status == "running" and jobs.publications() == []

        assert jobs.publish(
            job, build, "net", "r.test/bastion/net", "sha256:" + "b" * 64, ["latest"], "host:2"
        )
        jobs.finish(job, "done", worker="host:2")
        done = jobs.get(job)
        assert done.status == "done" and done.lease_until is None
        assert jobs.claim(job, "host:3", 120, "/log").outcome == "finished"


def test_of_deliveries_claiming_at_once_exactly_one_gets_the_job(url: str, tmp_path: Path) -> None:  # noqa: F811
    with open_state(Settings(tmp_path), url) as state:
        jobs = Jobs(state.engine)
        job = _job(jobs)
        start = threading.Barrier(6)
        outcomes: list[str] = []

        def deliver(number: int) -> None:
            start.wait()
            outcomes.append(jobs.claim(job, f"host:{number}", 120, "/log").outcome)

        threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["claimed"] + ["held"] * 5
        assert jobs.get(job).attempts == 1
