"""Proposals, jobs, stages, builds and publications in the factory database.

Idempotency (issue 20 item 5): a job's ``key`` is ``<image>@<recipe digest>`` and unique, so a
second trigger of the same rebuild finds the first job instead of making one. A publication is
inserted in the same transaction that moves its job to ``published``, and is unique per
(reference, digest): a redelivered job that finds its publication does not publish again.

The lease (migration 0004): a worker runs a job only after :meth:`Jobs.claim` gave it the job
(``worker``, ``lease_until``), renews the lease while it works (:meth:`Jobs.renew`), and records a
publication only while it still holds it (:meth:`Jobs.publish`), so a delivery that took over an
expired lease and the slow original it replaced never both publish.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, desc, insert, select, update

from bastion import _clock as clock
from bastion.errors import BastionError
from bastion.factory._db import builds, jobs, proposals, publications, stages, tracker_state, transaction

__all__ = ["FINISHED", "Claim", "JobRow", "Jobs", "LeaseLost"]

# A job in one of these states is not run again.
FINISHED = frozenset({"done", "failed", "rejected"})


@dataclass(frozen=True)
class JobRow:
    id: int
    key: str
    image: str | None
    catalog: str | None
    status: str
    attempts: int
    priority: int
    error: str | None
    log_path: str | None
    proposal_id: int | None
    created_at: str
    finished_at: str | None
    worker: str | None = None
    lease_until: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> JobRow:
        return cls(row["id"], row["key"], row["image"], row["catalog"], row["status"], row["attempts"],
                   row["priority"], row["error"], row["log_path"], row["proposal_id"], row["created_at"],
                   row["finished_at"], row.get("worker"), row.get("lease_until"))  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """What :meth:`Jobs.claim` found: the job is ours now (``claimed``), another worker holds a live
    lease on it (``held``: ``wait`` seconds until it expires), or it needs no run (``finished``)."""

    outcome: Literal["claimed", "held", "finished"]
    row: JobRow
    wait: int = 0


class LeaseLost(BastionError):
    """This worker's lease on a job expired and another worker took the job over."""


class Jobs:
    """The job tables of one factory database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(
        self,
        *,
        image: str,
        recipe: str,
        catalog: str,
        reason: str,
        diff: str,
        priority: int,
        approved: bool,
    ) -> tuple[int, bool]:
        """The job of (image, recipe): made now with its proposal (True), or the one that exists."""
        key = f"{image}@{recipe}"
        moment = clock.rfc3339()
        with transaction(self.engine) as connection:
            found = connection.execute(select(jobs.c.id).where(jobs.c.key == key)).scalar()
            if found is not None:
                return int(found), False
            proposal = connection.execute(
                insert(proposals).values(image=image, reason=reason, diff=diff, recipe_digest=recipe,
                                         status="approved" if approved else "open", created_at=moment)
            ).inserted_primary_key  # fmt: skip
            assert proposal is not None
            job = connection.execute(
                insert(jobs).values(key=key, kind="rebuild", proposal_id=proposal[0], priority=priority,
                                    status="queued" if approved else "review", created_at=moment,
                                    image=image, catalog=catalog)
            ).inserted_primary_key  # fmt: skip
            assert job is not None
            return int(job[0]), True

    def get(self, job_id: int) -> JobRow:
        with transaction(self.engine) as connection:
            row = connection.execute(select(jobs).where(jobs.c.id == job_id)).mappings().one()
        return JobRow.of(dict(row))

    def diff(self, proposal_id: int) -> str:
        with transaction(self.engine) as connection:
            return str(
                connection.execute(select(proposals.c.diff).where(proposals.c.id == proposal_id)).scalar()
            )

    def update(self, job_id: int, **values: Any) -> None:
        with transaction(self.engine) as connection:
            connection.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    def claim(self, job_id: int, worker: str, lease: int, log_path: str) -> Claim:
        """Take job ``job_id`` for ``worker`` for ``lease`` seconds, unless it is finished or another
        worker's lease on it is live; a claim counts an attempt (a takeover is the second) and marks
        the job running. The row is read and written in one transaction, locked (PostgreSQL
        ``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers), so of two
        deliveries claiming at once exactly one gets the job."""
        now = clock.now()
        with transaction(self.engine) as connection:
            found = JobRow.of(dict(
                connection.execute(select(jobs).where(jobs.c.id == job_id).with_for_update()).mappings().one()
            ))  # fmt: skip
            if found.status in FINISHED or found.status == "review":
                return Claim("finished", found)
            live = found.lease_until is not None and found.lease_until > clock.rfc3339(now)
            if found.worker not in (None, worker) and live:
                expires = _parse(found.lease_until or "")
                return Claim("held", found, max(1, int((expires - now).total_seconds()) + 1))
            connection.execute(
                update(jobs).where(jobs.c.id == job_id).values(
                    attempts=jobs.c.attempts + 1, status="running", started_at=clock.rfc3339(now),
                    log_path=log_path, worker=worker, lease_until=clock.rfc3339(now + timedelta(seconds=lease)))
            )  # fmt: skip
            row = connection.execute(select(jobs).where(jobs.c.id == job_id)).mappings().one()
        return Claim("claimed", JobRow.of(dict(row)))

    def renew(self, job_id: int, worker: str, lease: int) -> bool:
        """Move ``worker``'s lease on ``job_id`` on by ``lease`` seconds (the heartbeat); False when
        the job is no longer this worker's (taken over after the lease expired)."""
        until = clock.rfc3339(clock.now() + timedelta(seconds=lease))
        with transaction(self.engine) as connection:
            done = connection.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.worker == worker).values(lease_until=until)
            )
        return bool(done.rowcount)

    def stage(self, job_id: int, stage: str, status: str, detail: str | None = None) -> None:
        with transaction(self.engine) as connection:
            connection.execute(
                insert(stages).values(
                    job_id=job_id, stage=stage, status=status, detail=detail, at=clock.rfc3339()
                )
            )

    def stages(self, job_id: int) -> list[tuple[str, str, str | None, str]]:
        with transaction(self.engine) as connection:
            rows = connection.execute(
                select(stages.c.stage, stages.c.status, stages.c.detail, stages.c.at)
                .where(stages.c.job_id == job_id)
                .order_by(stages.c.id)
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def finish(
        self, job_id: int, status: str, error: str | None = None, *, worker: str | None = None
    ) -> None:
        """The job's end, its lease ended with it; with ``worker``, only while that worker holds it."""
        condition = [jobs.c.id == job_id] + ([jobs.c.worker == worker] if worker is not None else [])
        with transaction(self.engine) as connection:
            connection.execute(
                update(jobs).where(*condition).values(status=status, error=error[:2000] if error else None,
                                                      finished_at=clock.rfc3339(), lease_until=None)
            )  # fmt: skip

    def record_build(self, job_id: int, image: str, recipe: str, digest: str, log_path: str) -> int:
        moment = clock.rfc3339()
        with transaction(self.engine) as connection:
            found = connection.execute(
                select(builds.c.id).where(builds.c.job_id == job_id, builds.c.image_digest == digest)
            ).scalar()
            if found is not None:
                return int(found)
            key = connection.execute(
                insert(builds).values(job_id=job_id, image=image, recipe_digest=recipe, image_digest=digest,
                                      status="built", log_path=log_path, started_at=moment, finished_at=moment)
            ).inserted_primary_key  # fmt: skip
            assert key is not None
            return int(key[0])

    def publication(self, job_id: int) -> dict[str, Any] | None:
        """The publication of ``job_id``'s build, if it has one."""
        with transaction(self.engine) as connection:
            row = (
                connection.execute(
                    select(publications)
                    .join(builds, builds.c.id == publications.c.build_id)
                    .where(builds.c.job_id == job_id)
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def publish(
        self,
        job_id: int,
        build_id: int,
        image: str,
        reference: str,
        digest: str,
        tags: Sequence[str],
        worker: str | None = None,
    ) -> bool:
        """Record the publication and the job's move to ``published`` in one transaction; False if
        this (reference, digest) was published before (by this job's predecessor, say). With
        ``worker``, only while that worker holds the job (else :class:`LeaseLost`, nothing written)."""
        with transaction(self.engine) as connection:
            if worker is not None:
                holder = connection.execute(
                    select(jobs.c.worker).where(jobs.c.id == job_id).with_for_update()
                ).scalar()
                if holder != worker:
                    raise LeaseLost(f"job {job_id}: the lease passed to {holder} before publication")
            found = connection.execute(
                select(publications.c.id).where(
                    publications.c.reference == reference, publications.c.digest == digest
                )
            ).scalar()
            if found is None:
                connection.execute(
                    insert(publications).values(build_id=build_id, image=image, reference=reference, digest=digest,
                                                tags=json.dumps(list(tags)), published_at=clock.rfc3339())
                )  # fmt: skip
            connection.execute(update(jobs).where(jobs.c.id == job_id).values(status="published"))
        return found is None

    def current(self, image: str) -> dict[str, Any] | None:
        """The newest publication of ``image``: what its moving tags point at."""
        with transaction(self.engine) as connection:
            row = (
                connection.execute(
                    select(publications)
                    .where(publications.c.image == image)
                    .order_by(desc(publications.c.id))
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    def unfinished(self) -> list[JobRow]:
        """Jobs queued or interrupted (a process killed mid-job): to run again, oldest first."""
        with transaction(self.engine) as connection:
            rows = (
                connection.execute(
                    select(jobs)
                    .where(jobs.c.status.in_(["queued", "running", "published"]))
                    .order_by(jobs.c.id)
                )
                .mappings()
                .all()
            )
        return [JobRow.of(dict(r)) for r in rows]

    def recent(self, image: str | None = None, limit: int = 50) -> list[JobRow]:
        query = select(jobs).order_by(desc(jobs.c.id)).limit(limit)
        if image is not None:
            query = query.where(jobs.c.image == image)
        with transaction(self.engine) as connection:
            rows = connection.execute(query).mappings().all()
        return [JobRow.of(dict(r)) for r in rows]

    def tracker_errors(self) -> list[tuple[str, str]]:
        with transaction(self.engine) as connection:
            rows = connection.execute(
                select(tracker_state.c.key, tracker_state.c.last_error)
                .where(tracker_state.c.last_error.is_not(None))
                .order_by(tracker_state.c.key)
            ).all()
        return [(r[0], r[1]) for r in rows]

    def publications(self) -> list[dict[str, Any]]:
        with transaction(self.engine) as connection:
            rows = connection.execute(select(publications).order_by(publications.c.id)).mappings().all()
        return [dict(r) for r in rows]


def _parse(moment: str) -> datetime:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
