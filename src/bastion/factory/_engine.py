"""Jobs on Celery (docs/architecture.md, Decisions: why Celery, and the two modes).

* Scale-out (``BASTION_FACTORY_BROKER``, e.g. Redis): ``factory run`` / ``factory schedule`` (celery
  beat) send jobs to the broker, ``factory worker`` processes on any machine take them. Delivery is
  at least once: ``acks_late`` acknowledges a job only when it returned, ``task_reject_on_worker_lost``
  hands back the job of a worker killed mid-job, and a job taken by a worker that vanished whole is
  delivered again after the broker's ``visibility_timeout`` (unacknowledged messages are looked for
  every ``min(10, visibility_timeout / 4)`` seconds). A delivery of a job another worker holds a live
  lease on (:mod:`bastion.factory._lease`: the original still running, or killed less than a lease
  ago) waits: it is retried when that lease would expire, so it either finds the job finished or
  takes it over; it is never run beside the original. Transient failures retry with
  exponential backoff (``autoretry_for``, ``retry_backoff``). Two queues give priority: ``fixes``
  (CVE fixes) is always read before ``routine`` (kombu's ``priority`` queue order).
* Embedded (no broker): the same task code runs eagerly in the ``factory run`` process; a job that
  process did not finish (killed) is still ``running`` in the database and is run again by the next
  ``factory run`` before anything new, which is this mode's redelivery.

A job's order (upstream images first) is kept by sending a cycle's jobs as one Celery chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.config import Settings
from bastion.errors import NetworkError
from bastion.factory._config import FactoryConfig

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["QUEUES", "celery_app", "send"]

QUEUES = ("fixes", "routine")


def celery_app(config: FactoryConfig, catalog: str | None = None) -> Celery:
    """The factory's Celery application for ``config.broker`` (eager without one)."""
    from celery import Celery
    from kombu import Queue

    app = Celery("bastion.factory", broker=config.broker or "memory://", set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_always_eager=config.broker is None,
        task_eager_propagates=True,
        task_default_queue="routine",
        task_queues=[Queue(name) for name in QUEUES],
        broker_transport_options={
            "visibility_timeout": config.visibility_timeout,
            "queue_order_strategy": "priority",
            "unacked_restore_interval": max(1, min(10, config.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        # A broker restarting mid-run: workers and senders reconnect (with backoff) for ever.
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        beat_schedule=(
            {
                "factory-cycle": {
                    "task": "bastion.factory.cycle",
                    "schedule": float(config.interval),
                    "args": (catalog,),
                }
            }
            if catalog is not None
            else {}
        ),
    )

    @app.task(name="bastion.factory.rebuild", bind=True, autoretry_for=(NetworkError,), retry_backoff=True,
              retry_backoff_max=600, retry_jitter=True, max_retries=5)  # fmt: skip
    def rebuild(task: Any, job_id: int) -> str:
        from bastion.factory._run import execute
        from bastion.factory._state import open_state

        settings = Settings.from_env()
        with open_state(settings) as state:

            def again(error: BaseException) -> None:
                raise error  # autoretry_for: Celery schedules the retry with backoff

            def held(wait: int) -> None:
                # Delivered again when the holder's lease would expire. Waiting is not a failure:
                # the limit is raised past this retry (Celery reads max_retries=None as the task's).
                raise task.retry(countdown=min(wait, config.lease), max_retries=task.request.retries + 1)

            config = FactoryConfig.from_env(settings)
            return execute(job_id, settings, config, state, on_transient=again, on_held=held)

    @app.task(name="bastion.factory.noop")
    def noop(number: int) -> int:
        return number

    @app.task(name="bastion.factory.cycle")
    def cycle_task(directory: str) -> list[int]:
        from pathlib import Path

        from bastion.factory._run import cycle
        from bastion.factory._state import open_state

        settings = Settings.from_env()
        config = FactoryConfig.from_env(settings)
        with open_state(settings) as state:
            found = cycle(Path(directory), settings, config, state)
        ids = [job.id for job in found.queued]
        send(celery_app(config), ids, [job.priority for job in found.queued])
        return ids

    return app


def send(app: Celery, job_ids: list[int], priorities: list[int]) -> None:
    """Send the jobs, in order, as one chain (each starts when the one before it returned); a chain
    holding a fix goes to the ``fixes`` queue."""
    from celery import chain

    if not job_ids:
        return
    queue = "fixes" if any(p > 0 for p in priorities) else "routine"
    task = app.tasks["bastion.factory.rebuild"]
    chain(*(task.si(job_id).set(queue=queue) for job_id in job_ids)).apply_async()
