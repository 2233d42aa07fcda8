"""The factory's state in a relational database (SQLAlchemy), its schema kept by Alembic.

Where: ``BASTION_FACTORY_DB`` when it is a ``postgresql://`` (or ``postgresql+psycopg://``) URL,
else SQLite at ``BASTION_HOME/factory.db``. :func:`open_state` applies the migrations shipped in
``bastion/factory/migrations`` up to the newest revision before anything else is read.

Tables (all times RFC 3339 UTC strings from :mod:`bastion._clock`; JSON in ``Text`` columns):

``tracker_state``
    ``key`` (PK: ``<definition>/track[<i>]``, or ``repository:<uri> <suite>`` for a polled Debian
    suite), ``kind``, ``result`` (last version or digest), ``validators`` (JSON: ``etag``,
    ``last-modified`` for conditional requests), ``memory`` (JSON a tracker keeps between polls:
    an increment's watched values, a suite's InRelease digest), ``last_error`` (one line),
    ``not_before`` (no polling before then: a rate limit), ``checked_at``, ``changed_at``.
``proposals``
    ``id``, ``image`` (definition name), ``reason``, ``diff`` (definition/lock diff as text),
    ``recipe_digest``, ``status`` (open, approved, rejected, built), ``created_at``.
``jobs``
    ``id``, ``key`` (unique: the idempotency key, e.g. the recipe digest, so duplicate triggers
    coalesce), ``kind``, ``proposal_id``, ``priority`` (higher first: CVE fixes before routine bumps),
    ``status``, ``attempts``, ``error``, ``created_at``, ``started_at``, ``finished_at``; since
    revision 0003 ``image``, ``catalog`` (the catalog directory the job reads) and ``log_path``;
    since revision 0004 the lease: ``worker`` (who claimed the job last: ``host:pid``) and
    ``lease_until`` (the claim holds until then; the worker's heartbeat moves it on).
``stages`` (revision 0003)
    ``id``, ``job_id``, ``stage`` (propose, review, build, tests, attestations, sign, publish,
    tags, cascade), ``status`` (done, failed, skipped, not-reviewed, approved), ``detail``, ``at``.
``builds``
    ``id``, ``job_id``, ``image``, ``recipe_digest``, ``image_digest``, ``status``, ``log_path`` (the
    job's log file), ``started_at``, ``finished_at``.
``publications``
    ``id``, ``build_id``, ``image``, ``reference`` (registry repository), ``digest``, ``tags`` (JSON
    list), ``published_at``; unique (reference, digest), so a redelivered job publishes once.
``cve_clock`` (revision 0002)
    ``id``, ``image``, ``vulnerability``, ``package``, ``severity``, ``kev``, ``first_seen_at`` (first
    scan that found it affecting the image), ``fix_available_at`` (when a fixed version appeared),
    ``fixed_version``, ``closed_at`` and ``closed_by`` (the publication without it); unique (image,
    vulnerability).

Concurrent processes: SQLite runs in WAL mode with every transaction ``BEGIN IMMEDIATE`` and a busy
timeout, so writers take turns instead of failing; migrations are serialised by a lock file beside
the database (SQLite) or a transaction-level advisory lock (PostgreSQL). Upserts use the dialects'
``ON CONFLICT`` so two writers of one row never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bastion.config import Settings
from bastion.errors import InputError, InternalError

__all__ = [
    "ENV_FACTORY_DB",
    "HEAD_REVISION",
    "builds",
    "connect",
    "current_revision",
    "database_url",
    "jobs",
    "migrate",
    "proposals",
    "publications",
    "stages",
    "tables",
    "tracker_state",
    "transaction",
]

ENV_FACTORY_DB = "BASTION_FACTORY_DB"
HEAD_REVISION = "0004"
_MIGRATIONS = Path(__file__).with_name("migrations")
_BUSY_SECONDS = 60
# PostgreSQL advisory lock id of the factory's migrations (any constant both writers agree on).
_MIGRATION_LOCK = 0x0BA5_710F

metadata = MetaData()

tracker_state = Table(
    "tracker_state",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("result", String(1024)),
    Column("validators", Text, nullable=False, server_default="{}"),
    Column("memory", Text, nullable=False, server_default="{}"),
    Column("last_error", String(2048)),
    Column("not_before", String(32)),
    Column("checked_at", String(32), nullable=False),
    Column("changed_at", String(32)),
)
proposals = Table(
    "proposals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("diff", Text, nullable=False),
    Column("recipe_digest", String(80)),
    Column("status", String(32), nullable=False),
    Column("created_at", String(32), nullable=False),
)
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("proposal_id", Integer, ForeignKey("proposals.id")),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("status", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", String(2048)),
    Column("created_at", String(32), nullable=False),
    Column("started_at", String(32)),
    Column("finished_at", String(32)),
    Column("image", String(256)),
    Column("catalog", String(4096)),
    Column("log_path", String(4096)),
    Column("worker", String(256)),
    Column("lease_until", String(32)),
)
stages = Table(
    "stages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("detail", Text),
    Column("at", String(32), nullable=False),
)
builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id")),
    Column("image", String(256), nullable=False),
    Column("recipe_digest", String(80), nullable=False),
    Column("image_digest", String(80)),
    Column("status", String(32), nullable=False),
    Column("log_path", String(4096)),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
)
publications = Table(
    "publications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("build_id", Integer, ForeignKey("builds.id"), nullable=False),
    Column("image", String(256), nullable=False),
    Column("reference", String(1024), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("tags", Text, nullable=False, server_default="[]"),
    Column("published_at", String(32), nullable=False),
    UniqueConstraint("reference", "digest"),
)
cve_clock = Table(
    "cve_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image", String(256), nullable=False),
    Column("vulnerability", String(128), nullable=False),
    Column("package", String(256)),
    Column("severity", String(16), nullable=False),
    Column("kev", Boolean, nullable=False, server_default="0"),
    Column("first_seen_at", String(32), nullable=False),
    Column("fix_available_at", String(32)),
    Column("fixed_version", String(256)),
    Column("closed_at", String(32)),
    Column("closed_by", Integer, ForeignKey("publications.id")),
    UniqueConstraint("image", "vulnerability"),
)


def tables() -> dict[str, Table]:
    """The tables of the newest revision, by name (for the code that reads and writes them)."""
    return dict(metadata.tables)


def database_url(settings: Settings) -> str:
    """``BASTION_FACTORY_DB`` if it names PostgreSQL (or SQLite), else ``BASTION_HOME/factory.db``."""
    configured = os.environ.get(ENV_FACTORY_DB, "").strip()
    if not configured:
        return f"sqlite:///{settings.home / 'factory.db'}"
    scheme = configured.split("://", 1)[0]
    if scheme in ("postgresql", "postgres"):
        # psycopg 3 is the driver Bastion ships with; the bare scheme would ask for psycopg2.
        return "postgresql+psycopg://" + configured.split("://", 1)[1]
    if scheme in ("postgresql+psycopg", "sqlite"):
        return configured
    raise InputError(
        f"{ENV_FACTORY_DB}: unsupported database URL scheme {scheme!r}",
        hint="use postgresql://user@host:port/db or sqlite:///path",
    )


def _sqlite_immediate(engine: Engine) -> None:
    """pysqlite opens transactions lazily and deferred; a deferred transaction that later writes can
    fail at once with "database is locked" instead of waiting. Every transaction is taken
    ``BEGIN IMMEDIATE`` (SQLite "Transaction" docs), after the busy timeout."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None
        cursor = dbapi.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def connect(url: str) -> Engine:
    """An engine for ``url``, migrated to :data:`HEAD_REVISION`."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": _BUSY_SECONDS})
        _sqlite_immediate(engine)
        with filelock.FileLock(str(path) + ".lock", timeout=_BUSY_SECONDS * 10):
            migrate(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply the shipped migrations up to ``revision`` (``head``: the newest)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Two processes opening a new database at once: the second waits, then finds it done.
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as err:
        raise InputError(
            f"cannot open the factory database: {_first_line(err)}", where=_where(engine)
        ) from None
    except SQLAlchemyError as err:
        raise InternalError(
            f"migrating the factory database failed: {_first_line(err)}", where=_where(engine)
        ) from None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (Alembic's ``alembic_version``), or ``None`` if it has none."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; database errors become one line naming the database."""
    try:
        with engine.begin() as connection:
            yield connection
    except OperationalError as err:
        raise InputError(f"factory database: {_first_line(err)}", where=_where(engine)) from None


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _first_line(err: Exception) -> str:
    return str(getattr(err, "orig", err)).strip().splitlines()[0] if str(err).strip() else type(err).__name__
