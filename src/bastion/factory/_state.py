"""Reading and recording tracker state: the library half that ``factory run`` builds on.

``factory plan`` only reads (:meth:`FactoryState.trackers`); :meth:`FactoryState.record` writes what
a poll found, one upsert per tracker, safe when several processes record at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from bastion import _clock as clock
from bastion.config import Settings
from bastion.factory._db import connect, database_url, tracker_state, transaction

__all__ = ["FactoryState", "TrackerState", "open_state"]


@dataclass(frozen=True)
class TrackerState:
    """What the last poll of one tracker (or one Debian suite) left."""

    key: str
    kind: str
    result: str | None = None
    validators: Mapping[str, str] = field(default_factory=dict)
    """Conditional-request validators: ``etag``, ``last-modified``."""
    memory: Mapping[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    not_before: str | None = None
    checked_at: str | None = None
    changed_at: str | None = None


class FactoryState:
    """The factory database (:mod:`bastion.factory._db` documents the tables)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> FactoryState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def trackers(self) -> dict[str, TrackerState]:
        """Every tracker's stored state, by key."""
        with transaction(self.engine) as connection:
            rows = connection.execute(select(tracker_state)).mappings().all()
        return {row["key"]: _state(dict(row)) for row in rows}

    def record(self, states: Iterable[TrackerState]) -> None:
        """Store what a poll found, in one transaction. ``changed_at`` moves only when ``result`` does;
        a failed poll (``last_error`` set, ``result`` None) keeps the last good result and validators."""
        moment = clock.rfc3339()
        states = list(states)
        if not states:
            return
        with transaction(self.engine) as connection:
            keys = [state.key for state in states]
            before = {
                row["key"]: row
                for row in connection.execute(
                    select(tracker_state).where(tracker_state.c.key.in_(keys))
                ).mappings()
            }
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            for state in states:
                old = before.get(state.key)
                result = state.result if state.result is not None else (old["result"] if old else None)
                changed = old["changed_at"] if old else None
                failed = state.result is None and old is not None
                validators = json.loads(old["validators"]) if failed and old else dict(state.validators)
                memory = json.loads(old["memory"]) if failed and old else dict(state.memory)
                if state.result is not None and (old is None or old["result"] != state.result):
                    changed = moment
                values = {
                    "key": state.key,
                    "kind": state.kind,
                    "result": result,
                    "validators": json.dumps(validators, sort_keys=True),
                    "memory": json.dumps(memory, sort_keys=True),
                    "last_error": state.last_error,
                    "not_before": state.not_before,
                    "checked_at": moment,
                    "changed_at": changed,
                }
                statement = insert(tracker_state).values(**values)
                update = {name: statement.excluded[name] for name in values if name != "key"}
                connection.execute(statement.on_conflict_do_update(index_elements=["key"], set_=update))


def _state(row: Mapping[str, Any]) -> TrackerState:
    return TrackerState(
        key=row["key"],
        kind=row["kind"],
        result=row["result"],
        validators=_json_object(row["validators"]),
        memory=_json_object(row["memory"]),
        last_error=row["last_error"],
        not_before=row["not_before"],
        checked_at=row["checked_at"],
        changed_at=row["changed_at"],
    )


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def open_state(settings: Settings, url: str | None = None) -> FactoryState:
    """The factory database for ``settings`` (``BASTION_FACTORY_DB`` or ``BASTION_HOME/factory.db``),
    or at ``url``, migrated to the newest revision."""
    return FactoryState(connect(url or database_url(settings)))
