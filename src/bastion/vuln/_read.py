"""The read side of the vulnerability database: the repository interface (:class:`VulnDatabase`)
and the queries a scan makes, written once in plain SQL over any DB-API connection.

:class:`bastion.vuln._db.SqlVulnDatabase` (SQLAlchemy, every backend, writes and migrations) runs
these queries on its engine's connections; :class:`SqliteScanDatabase` runs them on the standard
library's sqlite3, read-only, so that ``bastion cves`` does not load SQLAlchemy before it scans.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bastion.vuln._state import SCHEMA_VERSION

__all__ = ["AffectedHit", "Reads", "SourceStatus", "SqliteScanDatabase", "VulnDatabase", "open_for_scan"]

_CHUNK = 500  # bound parameters per IN (...) (SQLite allows 32766; PostgreSQL more)


@dataclass(frozen=True)
class AffectedHit:
    """One affected entry of one advisory, for a package the scan asked about."""

    source: str
    advisory_id: str
    ecosystem: str
    package: str
    data: dict[str, Any]
    summary: str
    aliases: tuple[str, ...]
    severity: tuple[tuple[str, str], ...]
    db_severity: str | None


@dataclass(frozen=True)
class SourceStatus:
    name: str
    location: str
    imported_at: str
    records: int


class VulnDatabase(Protocol):
    """What the importer, the updater and the matcher need from a database."""

    def transaction(self) -> Any:  # a context manager yielding a VulnWriter
        ...

    def lookup(self, keys: Mapping[str, Collection[str]]) -> list[AffectedHit]: ...
    def severities(self, ids: Collection[str]) -> dict[str, list[tuple[tuple[str, str], ...] | str]]: ...
    def kev_ids(self, ids: Collection[str]) -> set[str]: ...
    def sources(self) -> list[SourceStatus]: ...
    def feed(self, url: str) -> tuple[str | None, str | None]: ...
    def is_empty(self) -> bool: ...
    def close(self) -> None: ...


def marks(paramstyle: str, count: int) -> list[str]:
    """``count`` positional placeholders in a DB-API driver's own style (PEP 249 ``paramstyle``)."""
    if paramstyle == "qmark":
        return ["?"] * count
    if paramstyle == "numeric":
        return [f":{i + 1}" for i in range(count)]
    return ["%s"] * count  # format / pyformat drivers (psycopg)


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def severity_of(text: str) -> tuple[tuple[str, str], ...]:
    if text == "[]":
        return ()
    return tuple((str(item[0]), str(item[1])) for item in json.loads(text))


class Reads:
    """The scan's queries over DB-API connections from ``connect`` (a context manager factory),
    with placeholders in ``paramstyle``. Plain SQL straight through the driver: compiling Core
    statements with their expanding IN lists cost a scan more than running them."""

    def __init__(
        self, connect: Callable[[], contextlib.AbstractContextManager[Any]], paramstyle: str
    ) -> None:
        self._connect = connect
        self._paramstyle = paramstyle

    def query(self, conn: Any, sql: str, fixed: list[Any], values: Sequence[Any]) -> list[Any]:
        """Run ``sql``, whose ``{0}``.. take one placeholder per ``fixed`` value and whose last field
        takes the placeholders of an ``IN (...)`` list of ``values``. Table and column names are ours."""
        placeholders = marks(self._paramstyle, len(fixed) + len(values))
        text = sql.format(*placeholders[: len(fixed)], ", ".join(placeholders[len(fixed) :]))
        cursor = conn.cursor()
        try:
            cursor.execute(text, tuple([*fixed, *values]))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def lookup(self, keys: Mapping[str, Collection[str]]) -> list[AffectedHit]:
        sql = (
            "SELECT a.source, a.advisory_id, a.ecosystem, a.package, a.data, v.summary, v.aliases, "
            "v.severity, v.db_severity FROM affected a JOIN advisories v "
            "ON v.source = a.source AND v.id = a.advisory_id WHERE a.ecosystem = {0} AND a.package IN ({1})"
        )
        hits: list[AffectedHit] = []
        with self._connect() as conn:
            for ecosystem, names in keys.items():
                for chunk in chunks(sorted(set(names))):
                    rows = self.query(conn, sql, [ecosystem], chunk)
                    for source, ident, eco, package, data, summary, aliases, severity, db_severity in rows:
                        hits.append(
                            AffectedHit(
                                source, ident, eco, package, json.loads(data), summary,
                                tuple(aliases.split("\n")) if aliases else (), severity_of(severity), db_severity,
                            )
                        )  # fmt: skip
        return hits

    def severities(self, ids: Collection[str]) -> dict[str, list[tuple[tuple[str, str], ...] | str]]:
        """For each id, the severity entries (CVSS vectors, database severities) of every record that
        has it as id or alias."""
        found: dict[str, list[tuple[tuple[str, str], ...] | str]] = {}
        sql = "SELECT alias, severity, db_severity FROM severities WHERE alias IN ({0})"
        with self._connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                for alias, severity, db_severity in self.query(conn, sql, [], chunk):
                    entries = found.setdefault(alias, [])
                    entries.append(severity_of(severity))
                    if db_severity:
                        entries.append(db_severity)
        return found

    def kev_ids(self, ids: Collection[str]) -> set[str]:
        result: set[str] = set()
        sql = "SELECT cve_id FROM kev WHERE cve_id IN ({0})"
        with self._connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                result.update(row[0] for row in self.query(conn, sql, [], chunk))
        return result

    def sources(self) -> list[SourceStatus]:
        sql = "SELECT name, location, imported_at, records FROM sources ORDER BY name"
        with self._connect() as conn:
            rows = self.query(conn, sql, [], [])
        return [
            SourceStatus(name, location, imported_at, int(records))
            for name, location, imported_at, records in rows
        ]

    def feed(self, url: str) -> tuple[str | None, str | None]:
        with self._connect() as conn:
            rows = self.query(conn, "SELECT etag, last_modified FROM feeds WHERE url = {0}", [url], [])
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def is_empty(self) -> bool:
        with self._connect() as conn:
            return not self.query(conn, "SELECT name FROM sources LIMIT 1", [], [])


class SqliteScanDatabase(Reads):
    """A SQLite database opened read-only for a scan (:func:`open_for_scan`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(self._connection, sqlite3.paramstyle)
        self.url = f"sqlite:///{path}"
        # A file: URI (percent-encoded, so any path works) to open it read-only.
        self._conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        # As SqlVulnDatabase's connections: a scan's lookups land on random pages of the advisories
        # table, read through a memory map rather than SQLite's page cache (docs/benchmarks.md).
        self._conn.execute("PRAGMA mmap_size=1073741824")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        yield self._conn

    def transaction(self) -> Any:
        raise TypeError("a database opened for a scan is read-only")  # a programming error, not input

    def close(self) -> None:
        self._conn.close()


def open_for_scan(path: Path) -> SqliteScanDatabase | None:
    """The SQLite database at ``path`` read-only through the standard library, when it already has
    this Bastion's schema; ``None`` otherwise (missing, older, newer, or not a database), for the
    caller to open it through :func:`bastion.vuln._db.open_database`, which migrates or refuses."""
    try:
        database = SqliteScanDatabase(path)
    except sqlite3.Error:
        return None
    try:
        rows = database.query(database._conn, "SELECT value FROM meta WHERE key = {0}", ["schema"], [])
    except sqlite3.Error:
        database.close()
        return None
    if not rows or rows[0][0] != SCHEMA_VERSION:
        database.close()
        return None
    return database
