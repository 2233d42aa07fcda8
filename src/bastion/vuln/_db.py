"""The vulnerability database: a repository interface, and its SQLAlchemy implementation (SQLite
under ``BASTION_HOME/vuln.db`` by default; the Core statements are portable, so a PostgreSQL URL is
the next backend).

Schema (created on first use; ``meta.schema`` holds :data:`SCHEMA_VERSION`)::

    advisories (source, id) PK, modified, published, summary, aliases (one per line), severity JSON,
               db_severity, digest            -- one row per OSV record / tracker CVE
    affected   source, advisory_id, ecosystem, package, data JSON
               INDEX (ecosystem, package), INDEX (source, advisory_id)
    severities source, advisory_id, alias, severity JSON, db_severity   INDEX (alias)
               -- for each record that rates its vulnerability (CVSS or its own severity word), one
               -- row per id it has (its own and its aliases) with the rating: a scan asks for the
               -- ratings of every id it found, and most records carry none
    kev        cve_id PK, date_added, due_date, ransomware, name
    sources    name PK, location, imported_at, records
    feeds      url PK, etag, last_modified, fetched_at

An import runs in one transaction: interrupted, it leaves the previous database as it was. Writers to
one SQLite file take turns through a lock file beside it (``vuln.db.lock``): creating the schema
(``CREATE TABLE`` after a check that another process can pass at the same moment), migrating it, and
each import (whose reads of the stored digests and whose writes must see no other import in between).
Scans do not take it: with WAL they read the last committed state while an import writes. A record
whose content digest is unchanged is left alone; a changed one is replaced (rows deleted, inserted
again) — so re-importing a feed costs little and "re-import replaces changed records".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import filelock
from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DatabaseError

from bastion._clock import rfc3339
from bastion.errors import InputError
from bastion.vuln._read import AffectedHit, Reads, SourceStatus, VulnDatabase, chunks, marks
from bastion.vuln._records import ImportCounts, KevEntry, Record
from bastion.vuln._state import DATA_KEY, SCHEMA_VERSION, database_path

__all__ = [
    "SCHEMA_VERSION",
    "AffectedHit",
    "ImportCounts",
    "KevEntry",
    "Record",
    "SourceStatus",
    "SqlVulnDatabase",
    "VulnDatabase",
    "VulnWriter",
    "database_path",
    "open_database",
]

#: How long a writer waits for another process's import (or schema creation) to finish.
WRITER_WAIT_SECONDS = 600.0

_meta = MetaData()
_advisories = Table(
    "advisories", _meta,
    Column("source", String(32), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("modified", String(40), nullable=False),
    Column("published", String(40)),
    Column("summary", Text, nullable=False),
    Column("aliases", Text, nullable=False),  # one per line
    Column("severity", Text, nullable=False),
    Column("db_severity", String(32)),
    Column("digest", String(64), nullable=False),
)  # fmt: skip
_affected = Table(
    "affected", _meta,
    Column("source", String(32), nullable=False),
    Column("advisory_id", String(128), nullable=False),
    Column("ecosystem", String(64), nullable=False),
    Column("package", String(512), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_affected_package", "ecosystem", "package"),
    Index("ix_affected_advisory", "source", "advisory_id"),
)  # fmt: skip
_severities = Table(
    "severities", _meta,
    Column("source", String(32), nullable=False),
    Column("advisory_id", String(128), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("severity", Text, nullable=False),
    Column("db_severity", String(32)),
    Index("ix_severities_alias", "alias"),
    Index("ix_severities_advisory", "source", "advisory_id"),
)  # fmt: skip
_kev = Table(
    "kev", _meta,
    Column("cve_id", String(64), primary_key=True),
    Column("date_added", String(16)),
    Column("due_date", String(16)),
    Column("ransomware", String(16)),
    Column("name", Text),
)  # fmt: skip
_sources = Table(
    "sources", _meta,
    Column("name", String(32), primary_key=True),
    Column("location", Text, nullable=False),
    Column("imported_at", String(40), nullable=False),
    Column("records", Integer, nullable=False),
)  # fmt: skip
_feeds = Table(
    "feeds", _meta,
    Column("url", String(1024), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fetched_at", String(40), nullable=False),
)  # fmt: skip
_metadata_table = Table(
    "meta", _meta, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False)
)


class VulnWriter(Protocol):
    def put_records(self, records: Iterable[Record], counts: ImportCounts) -> None: ...
    def put_kev(self, entries: Iterable[KevEntry], counts: ImportCounts) -> None: ...
    def mark_source(self, name: str, location: str) -> None: ...
    def set_feed(self, url: str, etag: str | None, last_modified: str | None) -> None: ...


def _insert_many(conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """One executemany straight through the driver. Core's executemany spends most of an import
    building parameter dictionaries (about half the time at 200,000 records); the statement is
    plain SQL written in the dialect's own placeholder style, so it stays portable."""
    if not rows:
        return
    names = [column.name for column in table.columns]
    placeholders = marks(conn.dialect.paramstyle, len(names))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(placeholders)})"  # noqa: S608 - names are ours
    conn.exec_driver_sql(sql, rows)


class _SqlWriter:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._digests: dict[str, dict[str, str]] = {}
        self.changed = False  # a record or the KEV catalogue changed (bastion.vuln._state)

    def _known(self, source: str) -> dict[str, str]:
        if source not in self._digests:
            rows = self._conn.execute(
                select(_advisories.c.id, _advisories.c.digest).where(_advisories.c.source == source)
            )
            self._digests[source] = {row.id: row.digest for row in rows}
        return self._digests[source]

    def put_records(self, records: Iterable[Record], counts: ImportCounts) -> None:
        batch: list[Record] = []
        for record in records:
            batch.append(record)
            if len(batch) >= 5000:
                self._write(batch, counts)
                batch = []
        self._write(batch, counts)

    def _write(self, batch: list[Record], counts: ImportCounts) -> None:
        # The same id twice in one batch: the last copy is the record, as if imported after the other.
        last: dict[tuple[str, str], Record] = {}
        for record in batch:
            if (record.source, record.id) in last:
                counts.superseded += 1
            last[(record.source, record.id)] = record
        stale: dict[str, list[str]] = {}
        fresh: list[Record] = []
        for record in last.values():
            known = self._known(record.source)
            old = known.get(record.id)
            if record.withdrawn:
                if old is not None:
                    stale.setdefault(record.source, []).append(record.id)
                    del known[record.id]
                counts.withdrawn += 1
                continue
            if old == record.digest:
                counts.unchanged += 1
                continue
            if old is None:
                counts.added += 1
            else:
                counts.replaced += 1
                stale.setdefault(record.source, []).append(record.id)
            known[record.id] = record.digest
            fresh.append(record)
        self.changed = self.changed or bool(stale or fresh)
        for source, ids in stale.items():
            for chunk in chunks(sorted(set(ids))):
                for table, column in (
                    (_affected, _affected.c.advisory_id),
                    (_severities, _severities.c.advisory_id),
                ):
                    self._conn.execute(delete(table).where(table.c.source == source, column.in_(chunk)))
                self._conn.execute(
                    delete(_advisories).where(_advisories.c.source == source, _advisories.c.id.in_(chunk))
                )
        if not fresh:
            return
        ratings = [json.dumps(r.severity) if r.severity else "[]" for r in fresh]
        _insert_many(
            self._conn,
            _advisories,
            [
                (r.source, r.id, r.modified, r.published, r.summary, "\n".join(r.aliases), rating,
                 r.db_severity, r.digest)
                for r, rating in zip(fresh, ratings, strict=True)
            ],
        )  # fmt: skip
        _insert_many(
            self._conn,
            _affected,
            [(r.source, r.id, eco, pkg, data) for r in fresh for eco, pkg, data in r.affected],
        )
        _insert_many(
            self._conn,
            _severities,
            [
                (r.source, r.id, alias, rating, r.db_severity)
                for r, rating in zip(fresh, ratings, strict=True)
                if r.severity or r.db_severity
                for alias in dict.fromkeys((r.id, *r.aliases))
            ],
        )

    def put_kev(self, entries: Iterable[KevEntry], counts: ImportCounts) -> None:
        rows = {e.cve_id: e for e in entries}
        new = {(e.cve_id, e.date_added, e.due_date, e.ransomware, e.name) for e in rows.values()}
        old = {tuple(row) for row in self._conn.execute(select(_kev))}
        self.changed = self.changed or new != old
        # The KEV catalogue is published whole: the new one replaces the old.
        self._conn.execute(delete(_kev))
        if rows:
            self._conn.execute(
                insert(_kev),
                [
                    {"cve_id": e.cve_id, "date_added": e.date_added, "due_date": e.due_date,
                     "ransomware": e.ransomware, "name": e.name}
                    for e in rows.values()
                ],
            )  # fmt: skip
        counts.kev += len(rows)

    def mark_source(self, name: str, location: str) -> None:
        if name == "kev":
            count = self._conn.execute(select(func.count()).select_from(_kev)).scalar_one()
        else:
            count = self._conn.execute(
                select(func.count()).select_from(_advisories).where(_advisories.c.source == name)
            ).scalar_one()
        self._conn.execute(delete(_sources).where(_sources.c.name == name))
        self._conn.execute(
            insert(_sources).values(name=name, location=location, imported_at=rfc3339(), records=count)
        )

    def set_feed(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self._conn.execute(delete(_feeds).where(_feeds.c.url == url))
        self._conn.execute(
            insert(_feeds).values(url=url, etag=etag, last_modified=last_modified, fetched_at=rfc3339())
        )


class SqlVulnDatabase(Reads):
    """:class:`VulnDatabase` on SQLAlchemy Core; its reads (:class:`Reads`) run on the engine's
    DB-API connections."""

    def __init__(self, url: str | URL, *, create: bool = True) -> None:
        parsed = make_url(url)
        # Shown in messages; a password in a server URL is hidden.
        self.url = url = parsed.render_as_string(hide_password=True)
        self._engine: Engine = create_engine(parsed)
        super().__init__(self._driver_connection, self._engine.dialect.paramstyle)
        self._lock: filelock.BaseFileLock | None = None
        if parsed.get_backend_name() == "sqlite":
            event.listen(self._engine, "connect", _sqlite_pragmas)
            if parsed.database and parsed.database != ":memory:":
                self._lock = filelock.FileLock(f"{parsed.database}.lock", timeout=WRITER_WAIT_SECONDS)
        try:
            if create and not self._schema_current():
                with self._writing():
                    _meta.create_all(self._engine)
                    with self._engine.begin() as conn:
                        _migrate(conn, url)
        except DatabaseError as error:
            raise InputError(f"cannot open the vulnerability database: {error.orig}", where=url) from None

    def _schema_current(self) -> bool:
        """Whether the database already has this Bastion's schema (then opening it writes nothing, and
        a scan never waits for an import's lock)."""
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    select(_metadata_table.c.value).where(_metadata_table.c.key == "schema")
                ).first()
        except DatabaseError:  # no meta table yet (or not a database: create_all will say so)
            return False
        return row is not None and row[0] == SCHEMA_VERSION

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """This process as the only writer of the SQLite file (see the module's docstring)."""
        if self._lock is None:
            yield
            return
        try:
            with self._lock:
                yield
        except filelock.Timeout:
            raise InputError(
                f"another process has been writing the vulnerability database for {WRITER_WAIT_SECONDS:.0f} s",
                where=self.url,
                hint=f"another `bastion db import` or `db update` holds {self._lock.lock_file}; "
                "run this again when it has finished",
            ) from None

    @contextmanager
    def _driver_connection(self) -> Iterator[Any]:
        connection = self._engine.raw_connection()
        try:
            yield connection
        finally:
            connection.close()  # back to the pool

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[_SqlWriter]:
        with self._writing(), self._engine.begin() as conn:
            writer = _SqlWriter(conn)
            yield writer
            if writer.changed:  # committed with the change, or not at all
                conn.execute(delete(_metadata_table).where(_metadata_table.c.key == DATA_KEY))
                conn.execute(insert(_metadata_table).values(key=DATA_KEY, value=uuid.uuid4().hex))

    def counts_by_ecosystem(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_affected.c.ecosystem, func.count()).group_by(_affected.c.ecosystem).order_by(_affected.c.ecosystem)
            )  # fmt: skip
            return {row[0]: int(row[1]) for row in rows}


def _migrate(conn: Connection, url: str) -> None:
    """Bring a database written by an earlier Bastion to :data:`SCHEMA_VERSION`, in the caller's
    transaction (tables it lacks were just created, empty)."""
    row = conn.execute(select(_metadata_table.c.value).where(_metadata_table.c.key == "schema")).first()
    if row is None:  # a new database
        conn.execute(insert(_metadata_table).values(key="schema", value=SCHEMA_VERSION))
        return
    version = row[0]
    if version == SCHEMA_VERSION:
        return
    if version != "1":
        raise InputError(
            f"the vulnerability database has schema {version}, which this Bastion (schema "
            f"{SCHEMA_VERSION}) does not know: it was written by a newer version",
            where=url,
            hint="use that newer Bastion, or move the file away and import the data again",
        )
    # 1 -> 2: the severities table, filled from the records already imported; the aliases table
    # (every id of every record, which only the ratings were ever looked up through) goes.
    conn.exec_driver_sql(
        "INSERT INTO severities (source, advisory_id, alias, severity, db_severity) "
        "SELECT l.source, l.advisory_id, l.alias, v.severity, v.db_severity FROM aliases l JOIN advisories v "
        "ON v.source = l.source AND v.id = l.advisory_id WHERE v.severity != '[]' OR v.db_severity IS NOT NULL"
    )
    conn.exec_driver_sql("DROP TABLE aliases")
    conn.execute(
        _metadata_table.update().where(_metadata_table.c.key == "schema").values(value=SCHEMA_VERSION)
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL: readers (scans) never wait for an import, and a crash mid-import rolls back cleanly.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A scan's lookups land on random pages of the advisories table: reading them through a
    # memory map rather than SQLite's 2 MB page cache makes a cold scan's queries faster
    # (docs/benchmarks.md). The map only reserves address space.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


def open_database(home: Path) -> SqlVulnDatabase:
    """The database under ``home`` (created when missing)."""
    path = database_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built, not formatted: in "sqlite:///<path>" a "?" or "%" of the path would be read as URL syntax.
    return SqlVulnDatabase(URL.create("sqlite", database=str(path)))
