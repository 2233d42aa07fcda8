"""The factory database: migrations from empty and from the first revision, concurrent writers;
the same tests on SQLite and on a real PostgreSQL 15."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from bastion.config import Settings
from bastion.factory import HEAD_REVISION, TrackerState, current_revision, migrate, open_state
from bastion.factory._db import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'factory.db'}"
    return database_url_for(request.getfixturevalue("fresh_postgres"))


def database_url_for(configured: str) -> str:
    import os

    os.environ["BASTION_FACTORY_DB"] = configured
    try:
        return database_url(Settings(Path("/nonexistent")))
    finally:
        del os.environ["BASTION_FACTORY_DB"]


def test_an_empty_database_is_migrated_to_the_newest_revision(url: str, tmp_path: Path) -> None:
    with open_state(Settings(tmp_path), url) as state:
        assert current_revision(state.engine) == HEAD_REVISION
        names = set(inspect(state.engine).get_table_names())
    assert {"tracker_state", "proposals", "jobs", "builds", "publications", "cve_clock"} <= names


def test_an_upgrade_from_the_first_revision_keeps_the_rows(url: str, tmp_path: Path) -> None:
    engine = create_engine(url)
    migrate(engine, "0001")
    assert "cve_clock" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tracker_state (key, kind, result, checked_at) VALUES ('a/track[0]', 'url', '1.2', 'x')"
            )
        )
    engine.dispose()
    with open_state(Settings(tmp_path), url) as state:
        assert current_revision(state.engine) == HEAD_REVISION
        assert state.trackers()["a/track[0]"].result == "1.2"
        assert "cve_clock" in inspect(state.engine).get_table_names()


def test_a_failed_poll_keeps_the_last_result_and_validators(url: str, tmp_path: Path) -> None:
    with open_state(Settings(tmp_path), url) as state:
        state.record([TrackerState("a/track[0]", "url", "1.2", {"etag": '"v1"'})])
        changed = state.trackers()["a/track[0]"].changed_at
        state.record([TrackerState("a/track[0]", "url", last_error="http://x: HTTP 500")])
        found = state.trackers()["a/track[0]"]
    assert (found.result, found.validators, found.last_error) == (
        "1.2",
        {"etag": '"v1"'},
        "http://x: HTTP 500",
    )
    assert found.changed_at == changed


def _writer(url: str, home: str, worker: int) -> None:
    with open_state(Settings(Path(home)), url) as state:
        for round_ in range(25):
            state.record(
                [TrackerState(f"w{worker}/track[{i}]", "url", str(round_)) for i in range(4)]
                + [TrackerState("shared/track[0]", "url", f"{worker}-{round_}")]
            )


def test_concurrent_processes_write_without_losing_a_row(url: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(url, str(tmp_path), n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    with open_state(Settings(tmp_path), url) as state:
        rows = state.trackers()
    assert len(rows) == 4 * 4 + 1
    assert all(rows[f"w{n}/track[{i}]"].result == "24" for n in range(4) for i in range(4))
