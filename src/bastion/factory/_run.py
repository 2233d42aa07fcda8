"""``factory run``: one cycle (detect -> propose -> review gate -> queue, with the cascade) and one
job (build -> tests -> attestations -> sign -> publish -> tags), each stage recorded in the database.

A job is safe to run again from the start (a redelivered one does): the build is the pipeline's,
which takes an image whose recipe it built before from the store; the push skips what the registry
has; the publication is inserted once per (reference, digest) in the transaction that moves the job
to ``published``; tags move last, only after the pushed image's attestations verify, so no moving
tag ever points at an image without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bastion import _clock as clock
from bastion._progress import Progress, Silent
from bastion.catalog import DebianPackageTracker
from bastion.config import Settings
from bastion.errors import BastionError, NetworkError
from bastion.factory import _pipeline as pipeline
from bastion.factory._config import FactoryConfig
from bastion.factory._cveclock import fixed_by, observe
from bastion.factory._debian import LockChange
from bastion.factory._gate import Outcome, job_review, review_gate
from bastion.factory._graph import Graph, load_catalog
from bastion.factory._jobs import FINISHED, JobRow, Jobs, LeaseLost
from bastion.factory._lease import Heartbeat, pause, worker_id
from bastion.factory._plan import poll
from bastion.factory._propose import propose
from bastion.factory._state import FactoryState
from bastion.factory._trackers import variables

__all__ = ["Cycle", "QueuedJob", "cycle", "execute"]


@dataclass(frozen=True)
class QueuedJob:
    id: int
    image: str
    priority: int
    reasons: tuple[str, ...]


@dataclass
class Cycle:
    """What one cycle found and queued."""

    queued: list[QueuedJob] = field(default_factory=list)
    coalesced: list[str] = field(default_factory=list)
    """Images whose rebuild was already a job (the same recipe): nothing new."""
    waiting_review: list[str] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)
    """One line per proposal at the upstream review gate: its review, verdict and decision."""
    tracker_errors: list[str] = field(default_factory=list)
    end_of_life: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Images whose proposal could not be made (one line each); the others go on."""

    def note(self, image: str, outcome: Outcome, review: str | None) -> None:
        """What the review gate did with ``image``'s proposal (``review``: its upstream review)."""
        if outcome == "known":
            self.coalesced.append(image)
        elif review is not None:
            self.reviews.append(f"{image}: {review}")
        elif outcome == "wait":
            self.waiting_review.append(image)


def cycle(directory: Path, settings: Settings, config: FactoryConfig, state: FactoryState) -> Cycle:
    """Poll every tracker, record what they found, and queue a job per image to rebuild, in the
    graph's order (upstream first; each image once however many paths lead to it)."""
    catalog = load_catalog(directory)
    graph = Graph.of(catalog)
    polled = poll(catalog, settings, state.trackers())
    state.record(polled.states())
    jobs = Jobs(state.engine)
    result = Cycle(tracker_errors=[p.error for _, p in polled.trackers if p.error] +
                   [p.error for p in polled.suites if p.error])  # fmt: skip
    changes: dict[str, dict[str, tuple[str, str]]] = {}
    only_packages: dict[str, bool] = {}
    seeds: dict[str, list[str]] = {}
    for ref, found in polled.trackers:
        if found.result is None or found.error is not None:
            continue
        for var, value in variables(ref, found.result).items():
            written = ref.spec.vars[var].value
            if value != written:
                changes.setdefault(ref.definition, {})[var] = (written, value)
                seeds.setdefault(ref.definition, []).append(
                    f"track[{ref.index}] {ref.spec.kind}: {var} {written} -> {value}"
                )
                packages = isinstance(ref.spec, DebianPackageTracker)
                only_packages[ref.definition] = only_packages.get(ref.definition, True) and packages
    fixes = _lock_seeds(polled.lock_changes, state, seeds)
    today = clock.now().date()
    recipes: dict[str, str] = {}
    for name, reasons in graph.cascade(seeds):
        definition = catalog.definitions[name]
        if definition.dates.end_of_life is not None and definition.dates.end_of_life < today:
            result.end_of_life.append(name)
            continue
        try:
            proposal = propose(definition.path, changes.get(name, {}), settings,
                               trackers_only_packages=only_packages.get(name, True),
                               after=[recipes[u] for u in graph.upstream(name) if u in recipes])  # fmt: skip
        except BastionError as err:
            result.failed.append(f"{name}: {err.diagnostic()}")
            continue
        if proposal is None:
            continue
        recipes[name] = proposal.recipe
        priority = 1 if name in fixes else 0  # a CVE fix: the fixes queue, before routine (_engine.QUEUES)
        try:  # the review gate: the upstream diff guardrail, or the auto-approve policy (factory/_gate.py)
            gate = review_gate(definition, changes.get(name, {}), settings, config, proposal.packages_only)
        except BastionError as err:
            result.failed.append(f"{name}: upstream review: {err.diagnostic()}")
            continue
        job_id, created = jobs.open(image=name, recipe=proposal.recipe, catalog=str(directory),
                                    reason="; ".join(reasons), diff=proposal.diff, priority=priority,
                                    approved=gate.approved)  # fmt: skip
        outcome = gate.enter(jobs, job_id, created, proposal.diff)
        result.note(name, outcome, gate.line)
        if outcome != "go":
            continue
        proposal.apply()
        downstream = sorted(graph.downstream.get(name, {}))
        jobs.stage(job_id, "cascade", "done", "downstream: " + (", ".join(downstream) or "none"))
        result.queued.append(QueuedJob(job_id, name, priority, tuple(reasons)))
    return result


def _lock_seeds(changes: Sequence[LockChange], state: FactoryState, seeds: dict[str, list[str]]) -> set[str]:
    """Seed the images whose locked packages moved; the images among them whose update fixes an open
    CVE clock item (their jobs are CVE fixes)."""
    fixes = set()
    for change in changes:
        fixing = fixed_by(state, change.definition, change.package, change.candidate)
        seeds.setdefault(change.definition, []).append(
            f"locked {change.package} ({change.architecture}) {change.locked} -> {change.candidate}"
            + (f" (fixes {', '.join(fixing)})" if fixing else "")
        )
        if fixing:
            fixes.add(change.definition)
    return fixes


class _JobLog:
    """The job's log file, and the caller's progress display beside it."""

    def __init__(self, log: TextIO, outer: Progress, image: str, job_id: int) -> None:
        self.log, self.outer, self.image, self.job_id = log, outer, image, job_id
        self.names: dict[int, str] = {}

    def line(self, text: str) -> None:
        self.log.write(f"{clock.rfc3339()} {text}\n")
        self.log.flush()

    def task(self, description: str, total: int | None = None) -> int:
        self.line(description)
        if description.startswith("Assembling"):
            pause(self.job_id, "build")
        number = self.outer.task(f"{self.image}: {description}", total)
        self.names[number] = description
        return number

    def advance(self, task: int, amount: int = 1) -> None:
        self.outer.advance(task, amount)

    def finish(self, task: int) -> None:
        self.line(f"done: {self.names.get(task, task)}")
        self.outer.finish(task)

    def warn(self, message: str) -> None:
        self.line(f"warning: {message}")
        self.outer.warn(f"{self.image}: {message}")


def execute(
    job_id: int,
    settings: Settings,
    config: FactoryConfig,
    state: FactoryState,
    progress: Progress | None = None,
    *,
    on_transient: Callable[[BastionError], None] | None = None,
    on_held: Callable[[int], None] | None = None,
) -> str:
    """Run job ``job_id`` to its end under a lease (:mod:`bastion.factory._lease`); its final status.
    A transient failure (the network) is handed to ``on_transient`` (the task engine's retry) when
    given, else recorded as the failure. A job another worker holds a live lease on is not run: it
    is handed to ``on_held`` with the seconds until the lease expires (the task engine waits and
    delivers it again), else its status is returned as ``held``."""
    jobs = Jobs(state.engine)
    row = jobs.get(job_id)
    if row.status in FINISHED or row.status == "review":
        return row.status
    config.logs.mkdir(parents=True, exist_ok=True)
    log_path = config.logs / f"job-{job_id}.log"
    worker = worker_id()
    claim = jobs.claim(job_id, worker, config.lease, str(log_path))
    if claim.outcome == "finished":
        return claim.row.status
    if claim.outcome == "held":
        if on_held is not None:
            on_held(claim.wait)
        return "held"
    return _run_claimed(claim.row, log_path, worker, settings, config, state, progress, on_transient)


def _run_claimed(
    row: JobRow,
    log_path: Path,
    worker: str,
    settings: Settings,
    config: FactoryConfig,
    state: FactoryState,
    progress: Progress | None,
    on_transient: Callable[[BastionError], None] | None,
) -> str:
    job_id = row.id
    jobs = Jobs(state.engine)
    with (
        log_path.open("a", encoding="utf-8") as handle,
        Heartbeat(jobs, job_id, worker, config.lease) as beat,
    ):
        log = _JobLog(handle, progress or Silent(), row.image or "?", job_id)
        log.line(f"attempt {row.attempts} of job {job_id} ({row.key}) by {worker}")
        try:
            _stages(job_id, row.image or "", Path(row.catalog or "."), settings, config, state, log, worker)
        except LeaseLost as err:
            log.line(f"stopped: {err.diagnostic()}")
            return "taken over"
        except NetworkError as err:
            log.line(f"transient failure: {err.diagnostic()}")
            if on_transient is not None:
                jobs.update(job_id, status="queued", error=err.diagnostic(), lease_until=None)
                on_transient(err)
            jobs.finish(job_id, "failed", err.diagnostic(), worker=worker)
            return "failed"
        except BastionError as err:
            stage = "tests" if pipeline.is_test_failure(err) else "build"
            log.line(f"{stage} failed: {err.diagnostic()}")
            jobs.stage(job_id, stage, "failed", err.diagnostic())
            jobs.finish(job_id, "failed", f"{stage}: {err.diagnostic()}", worker=worker)
            return "failed"
        if beat.lost:
            log.line("stopped: the lease passed to another worker")
            return "taken over"
        log.line("done")
    jobs.finish(job_id, "done", worker=worker)
    return "done"


def _stages(
    job_id: int,
    image: str,
    directory: Path,
    settings: Settings,
    config: FactoryConfig,
    state: FactoryState,
    log: _JobLog,
    worker: str,
) -> None:
    jobs = Jobs(state.engine)
    catalog = load_catalog(directory)
    if image not in catalog.definitions:
        raise BastionError(f"the catalog has no definition {image!r} any more", where=str(directory))
    definition = catalog.definitions[image]
    row = jobs.get(job_id)
    recipe = row.key.rsplit("@", 1)[1]
    built = pipeline.build(definition, settings, key=config.key, progress=log,
                           review=job_review(jobs, job_id, settings))  # fmt: skip
    for b in built:
        jobs.stage(job_id, "build", "done", f"{b.variant}: {b.image} {b.digest} ({b.platforms} platforms"
                   + (", the same recipe: reused from the store)" if b.reused else ")"))  # fmt: skip
    jobs.stage(job_id, "tests", "done", "the definition's image tests passed")
    jobs.stage(job_id, "attestations", "done", "SBOMs (SPDX, CycloneDX) and SLSA provenance per platform")
    jobs.stage(job_id, "sign", "done", f"signed with {config.key or 'the local build key'}")
    if config.registry is None:
        jobs.stage(
            job_id, "publish", "skipped", "no BASTION_FACTORY_REGISTRY: built into the local store only"
        )
        return
    for b in built:
        build_id = jobs.record_build(job_id, image, recipe, b.digest, str(config.logs / f"job-{job_id}.log"))
        repository = f"{config.registry}/{b.image}"
        remote = f"{repository}@{b.digest}"
        log.line(f"pushing {remote}")
        attached = pipeline.push(settings, b.digest, remote)
        pause(job_id, "pushed")
        checks = pipeline.verify(settings, remote, config.public_key)
        new = jobs.publish(job_id, build_id, image, repository, b.digest, b.tags, worker)
        jobs.stage(job_id, "publish", "done", f"{remote}: {attached} attestations, {checks} verified"
                   + ("" if new else " (published before: not again)"))  # fmt: skip
        pause(job_id, "tags")
        for tag in b.tags:  # moving tags last, after the verification above
            pipeline.move_tag(settings, repository, tag, b.digest)
        jobs.stage(job_id, "tags", "done", f"{repository}: {', '.join(b.tags)} -> {b.digest}")
        _start_clock(job_id, image, remote, b.digest, settings, state, jobs)


def _start_clock(
    job_id: int, image: str, remote: str, digest: str, settings: Settings, state: FactoryState, jobs: Jobs
) -> None:
    """The CVE clock after a publication (issue 20 item 4): the published image scanned with the
    current vulnerability data, its items opened, updated, or closed by this publication."""
    try:
        scan = pipeline.scan(settings, remote)
    except BastionError as err:  # published already: the clock starts at the next rescan
        jobs.stage(job_id, "cve-clock", "failed", err.diagnostic())
        return
    if scan is None:
        jobs.stage(job_id, "cve-clock", "skipped", "no vulnerability database: no clock started")
        return
    seen = observe(state, image, digest, scan, now=clock.now(), published=True)
    jobs.stage(job_id, "cve-clock", "done", f"{len(seen.opened)} opened, {len(seen.closed)} closed, "
               f"{len(seen.open)} open")  # fmt: skip
