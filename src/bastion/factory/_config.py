"""Where the factory publishes, what it signs with, which broker it uses: from the environment.

``BASTION_FACTORY_REGISTRY``
    ``HOST[:PORT][/PREFIX]``: images are pushed to ``<registry>/<image repository>``. Unset: the
    factory builds, tests and signs, and records that nothing was published (``publish`` skipped).
``BASTION_FACTORY_KEY``
    The cosign-format private key the factory signs with (``file://PATH`` or a path); its public key
    is ``BASTION_FACTORY_PUBKEY``, else the same path with ``.pub``. Unset: the local build key.
``BASTION_FACTORY_BROKER``
    A Celery broker URL (``redis://127.0.0.1:6379/0``) for the scale-out mode. Unset: the embedded
    mode, where ``factory run`` executes every job in its own process (docs/architecture.md).
``BASTION_FACTORY_AUTO_APPROVE``
    The review gate's policy: ``packages`` (default: proposals that only move package versions are
    approved without review), ``all`` or ``none``.
``BASTION_FACTORY_INTERVAL``
    Seconds between two cycles of ``factory schedule`` / ``factory run`` without ``--once`` (3600).
``BASTION_FACTORY_VISIBILITY_TIMEOUT``
    Seconds after which a job taken by a worker that never acknowledged it (killed whole) is
    delivered again by the Redis broker (Celery's ``visibility_timeout``; default 600). A job still
    running then is not run twice: its delivery finds the lease live and waits.
``BASTION_FACTORY_LEASE``
    Seconds a worker's claim on a job lasts without a heartbeat (default 120; renewed every quarter
    of it while the job runs): how long after a worker died its job waits before another takes it.
``BASTION_FACTORY_WAIT``
    Seconds ``factory run`` with a broker waits for the workers to finish a cycle's jobs (default
    21600, six hours); then it stops with one line naming the jobs not finished (exit 1).

docs/architecture.md (Decisions) says why these numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bastion.config import Settings
from bastion.errors import InputError

__all__ = ["AutoApprove", "FactoryConfig"]


class AutoApprove(StrEnum):
    packages = "packages"
    all = "all"
    none = "none"


@dataclass(frozen=True)
class FactoryConfig:
    registry: str | None
    key: str | None
    public_key: Path
    broker: str | None
    auto_approve: AutoApprove
    interval: int
    visibility_timeout: int
    logs: Path
    lease: int = 120
    wait: int = 21600

    @classmethod
    def from_env(cls, settings: Settings) -> FactoryConfig:
        registry = os.environ.get("BASTION_FACTORY_REGISTRY", "").strip().rstrip("/") or None
        key = os.environ.get("BASTION_FACTORY_KEY", "").strip() or None
        if key is None:
            from bastion.attest import local_key_path

            public = local_key_path(settings.home).with_suffix(".pub")
        else:
            path = Path(key.removeprefix("file://"))
            public = Path(os.environ.get("BASTION_FACTORY_PUBKEY") or path.with_suffix(".pub"))
        broker = os.environ.get("BASTION_FACTORY_BROKER", "").strip() or None
        if broker is not None and not broker.startswith(("redis://", "rediss://", "amqp://", "sqla+")):
            raise InputError(
                "BASTION_FACTORY_BROKER: not a broker URL Bastion runs on",
                hint="use redis://HOST:PORT/DB (or amqp://, sqla+sqlite:///PATH)",
            )
        approve = os.environ.get("BASTION_FACTORY_AUTO_APPROVE", "packages").strip()
        try:
            auto_approve = AutoApprove(approve)
        except ValueError:
            raise InputError(
                f"BASTION_FACTORY_AUTO_APPROVE: {approve!r} is none of packages, all, none"
            ) from None
        return cls(
            registry=registry,
            key=key,
            public_key=public,
            broker=broker,
            auto_approve=auto_approve,
            interval=_seconds("BASTION_FACTORY_INTERVAL", 3600),
            visibility_timeout=_seconds("BASTION_FACTORY_VISIBILITY_TIMEOUT", 600),
            logs=settings.home / "factory" / "logs",
            lease=_seconds("BASTION_FACTORY_LEASE", 120),
            wait=_seconds("BASTION_FACTORY_WAIT", 21600),
        )


def _seconds(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 7 * 86400:
        raise InputError(f"{name}: {text!r} is not a number of seconds from 1 to 604800")
    return int(text)
