"""``bastion factory``: ``plan`` (a dry run), ``run`` (embedded, or sending jobs to the broker),
``worker`` and ``schedule`` (scale-out), ``status`` and ``history``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli._console import RichProgress, info, stdout, warning
from bastion.cli._output import emit

if TYPE_CHECKING:
    from bastion.factory import Cycle, FactoryConfig, Jobs

factory_app = typer.Typer(
    name="factory",
    help="The rebuild factory: watch upstreams, rebuild what changed.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class PlanFormat(StrEnum):
    table = "table"
    json = "json"


@factory_app.command("plan")
def plan_command(
    catalog: Annotated[
        Path, typer.Option("--catalog", help="The catalog directory (*.yaml, */*.yaml).", metavar="DIR")
    ] = Path("catalog"),
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.table,
) -> None:
    """Poll every tracker of the catalog and show what changed against the stored state, and which
    images that would rebuild (in order, with the reason for each). Writes no state; a tracker that
    fails is one line and the others go on. Exit 0 whatever changed."""
    from rich.table import Table

    from bastion.config import Settings
    from bastion.factory import open_state, plan

    settings = Settings.from_env()
    with open_state(settings) as state:
        previous = state.trackers()
    result = plan(catalog, settings, previous)
    if output_format is PlanFormat.json:
        # Straight to the stream: rich's renderer cost a second for the plan of 1,000 definitions.
        emit(json.dumps(result.as_json(), indent=2, sort_keys=True).encode(), None, line_on_stdout=True)
    else:
        trackers = Table("tracker", "kind", "stored", "now", "changes", box=None)
        for report in result.trackers:
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in report.changes.items())
            trackers.add_row(
                report.key, report.kind, report.stored or "-", report.now or "error", changes or "-"
            )
        stdout.print(trackers)
        rebuild = Table("order", "image", "because", box=None)
        for number, item in enumerate(result.rebuilds, 1):
            rebuild.add_row(str(number), item.image, "; ".join(item.reasons))
        stdout.print(rebuild if result.rebuilds else "nothing to rebuild")
    for report in result.trackers:
        if report.error:
            warning(report.error)
    for image in result.end_of_life:
        info(f"{image}: past its end of life, not rebuilt")
    info(
        f"{len(result.trackers)} trackers, {sum(1 for r in result.trackers if r.error)} failed, "
        f"{len(result.rebuilds)} images to rebuild ({result.requests} HTTP requests)"
    )


CatalogOpt = Annotated[
    Path, typer.Option("--catalog", help="The catalog directory (*.yaml, */*.yaml).", metavar="DIR")
]


@factory_app.command("run")
def run_command(
    catalog: CatalogOpt = Path("catalog"),
    once: Annotated[
        bool, typer.Option("--once", help="One cycle, then exit when its jobs are done.")
    ] = False,
) -> None:
    """Poll, propose, and rebuild, test, sign and publish what changed, upstream images first.

    Without BASTION_FACTORY_BROKER every job runs in this process (jobs an earlier run left
    unfinished first); with it the jobs go to the broker for `factory worker`s, and this waits for
    them. Without --once a cycle starts every BASTION_FACTORY_INTERVAL seconds."""
    import time

    from bastion.config import Settings
    from bastion.factory import FactoryConfig, Jobs, celery_app, cycle, execute, open_state, send

    settings = Settings.from_env()
    config = FactoryConfig.from_env(settings)
    while True:
        with open_state(settings) as state:
            jobs = Jobs(state.engine)
            if config.broker is None:
                for job in jobs.unfinished():
                    info(f"job {job.id} ({job.image}) was left unfinished: running it again")
                    with RichProgress() as progress:
                        if execute(job.id, settings, config, state, progress) == "held":
                            info(
                                f"job {job.id} is held by {job.worker} until {job.lease_until}: not run here"
                            )
            found = cycle(catalog, settings, config, state)
            _report(found, config)
            ids = [job.id for job in found.queued]
            if config.broker is None:
                for queued in found.queued:
                    info(f"rebuilding {queued.image} (job {queued.id}): {'; '.join(queued.reasons)}")
                    with RichProgress() as progress:
                        status = execute(queued.id, settings, config, state, progress)
                    info(f"{queued.image}: {status}")
            else:
                send(celery_app(config), ids, [job.priority for job in found.queued])
                info(f"sent {len(ids)} jobs to the broker; waiting for the workers")
                _wait(jobs, ids, config)
            for job_id in ids:
                row = jobs.get(job_id)
                stdout.print(
                    f"{row.image} {row.status}" + (f" {row.error}" if row.error else ""), markup=False
                )
        if once:
            return
        time.sleep(config.interval)


def _wait(jobs: Jobs, ids: list[int], config: FactoryConfig) -> None:
    """Until every job of ``ids`` is finished, at most ``BASTION_FACTORY_WAIT`` seconds."""
    import time

    from bastion.errors import BastionError, VerificationFailed
    from bastion.factory import FINISHED

    deadline = time.monotonic() + config.wait
    waiting = list(ids)
    while waiting:
        try:
            waiting = [i for i in waiting if jobs.get(i).status not in FINISHED]
        except BastionError as err:  # the database restarting: asked again at the next poll
            warning(f"waiting for the workers: {err.diagnostic()}")
        if waiting and time.monotonic() >= deadline:
            raise VerificationFailed(
                f"jobs {', '.join(map(str, waiting))} not finished after {config.wait} s "
                "(BASTION_FACTORY_WAIT); they stay queued for the workers",
                where="factory run",
                hint="are `bastion factory worker` processes running on this broker?",
            )
        if waiting:
            time.sleep(1)


def _report(found: Cycle, config: FactoryConfig) -> None:
    for line in found.tracker_errors + found.failed:
        warning(line)
    for image in found.end_of_life:
        info(f"{image}: past its end of life, not rebuilt")
    for image in found.coalesced:
        info(f"{image}: this rebuild is already a job (the same recipe): nothing new")
    for line in found.reviews:
        info(line)
    for image in found.waiting_review:
        info(f"{image}: proposal waiting for review (BASTION_FACTORY_AUTO_APPROVE={config.auto_approve})")
    if not found.queued:
        info("nothing to rebuild")


@factory_app.command("worker")
def worker_command(
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Jobs at once.")] = 1,
) -> None:
    """Take jobs from the broker (BASTION_FACTORY_BROKER) and run them, until stopped."""
    from bastion.config import Settings
    from bastion.errors import InputError
    from bastion.factory import QUEUES, FactoryConfig, celery_app

    config = FactoryConfig.from_env(Settings.from_env())
    if config.broker is None:
        raise InputError(
            "factory worker needs BASTION_FACTORY_BROKER (without it, factory run does the work)"
        )
    app = celery_app(config)
    app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "-Q", ",".join(QUEUES),
                     "--without-gossip", "--without-mingle"])  # fmt: skip


@factory_app.command("schedule")
def schedule_command(catalog: CatalogOpt = Path("catalog")) -> None:
    """Start a cycle every BASTION_FACTORY_INTERVAL seconds on the broker (celery beat), until stopped."""
    from bastion.config import Settings
    from bastion.errors import InputError
    from bastion.factory import FactoryConfig, celery_app

    settings = Settings.from_env()
    config = FactoryConfig.from_env(settings)
    if config.broker is None:
        raise InputError("factory schedule needs BASTION_FACTORY_BROKER (without it, use factory run)")
    app = celery_app(config, str(catalog.resolve()))
    schedule = settings.home / "factory" / "beat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "--loglevel=INFO", "-s", str(schedule)])


@factory_app.command("status")
def status_command(
    output_format: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = PlanFormat.table,
) -> None:
    """The latest jobs (a failed one with its error and the end of its log), the trackers that
    failed at their last poll, and what each image's moving tags point at."""
    from bastion.config import Settings
    from bastion.factory import Jobs, open_state

    with open_state(Settings.from_env()) as state:
        jobs = Jobs(state.engine)
        recent, errors, published = jobs.recent(), jobs.tracker_errors(), jobs.publications()
        # A job at the review gate: the review it waits for (the last ``review`` stage).
        gated = {j.id: next((d or "" for s, _, d, _ in reversed(jobs.stages(j.id)) if s == "review"), "")
                 for j in recent if j.status == "review"}  # fmt: skip
    if output_format is PlanFormat.json:
        document = {
            "jobs": [{"id": j.id, "image": j.image, "status": j.status, "attempts": j.attempts,
                      "error": j.error, "log": j.log_path, "review": gated.get(j.id)} for j in recent],
            "trackers": [{"tracker": key, "error": error} for key, error in errors],
            "publications": [{"image": p["image"], "reference": p["reference"], "digest": p["digest"],
                              "tags": json.loads(p["tags"])} for p in published],
        }  # fmt: skip
        stdout.print(json.dumps(document, indent=2, sort_keys=True), markup=False)
        return
    for job in recent:
        line = f"job {job.id} {job.image} {job.status} (attempts: {job.attempts})"
        detail = job.error or gated.get(job.id)
        stdout.print(line + (f": {detail}" if detail else ""), markup=False)
        if job.status == "failed" and job.log_path:
            for text in _tail(Path(job.log_path)):
                stdout.print(f"    {text}", markup=False)
    for key, error in errors:
        stdout.print(f"tracker {key} failed: {error}", markup=False)
    for p in published:
        stdout.print(f"published {p['image']} {p['reference']}@{p['digest']} {', '.join(json.loads(p['tags']))}",
                     markup=False)  # fmt: skip


@factory_app.command("history")
def history_command(image: Annotated[str, typer.Argument(help="A catalog definition's name.")]) -> None:
    """Every job of IMAGE, newest first, with its stages and its log."""
    from bastion.config import Settings
    from bastion.factory import Jobs, open_state

    with open_state(Settings.from_env()) as state:
        jobs = Jobs(state.engine)
        recent = jobs.recent(image, limit=20)
        for job in recent:
            stdout.print(f"job {job.id} {job.status} created {job.created_at} (attempts: {job.attempts})"
                         + (f": {job.error}" if job.error else ""), markup=False)  # fmt: skip
            for stage, status, detail, at in jobs.stages(job.id):
                first = (detail or "").splitlines()[0] if detail else ""
                stdout.print(f"  {at} {stage}: {status} {first}", markup=False)
            if job.log_path:
                for text in _tail(Path(job.log_path), 40):
                    stdout.print(f"    | {text}", markup=False)
    if not recent:
        info(f"no jobs for {image}")


def _tail(path: Path, lines: int = 10) -> list[str]:
    """The last ``lines`` of a job's log (read from its last 64 KiB)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 65536))
            return handle.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def register(app: typer.Typer) -> None:
    app.add_typer(factory_app)
