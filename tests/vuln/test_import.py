from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
import yaml

from bastion.errors import InputError
from bastion.vuln import import_paths, match_sbom, open_database
from tests.vuln.helpers import KEV, PYPI, TRACKER, pypi, sbom


def _pip_record(name: str) -> dict[str, object]:
    record: dict[str, object] = yaml.load((PYPI / "pip" / name).read_text(), Loader=yaml.BaseLoader)
    return record


def test_real_advisories_import_with_malformed_ones_counted(tmp_path: Path) -> None:
    database = open_database(tmp_path)
    report = import_paths(database, [PYPI, KEV, TRACKER])
    files = list(PYPI.rglob("*.yaml"))
    assert report.imported + report.withdrawn + report.skipped == len(files) + 3  # + 3 tracker CVEs
    # Two real records have ranges that are not PEP 440 versions: skipped, with the reason named.
    assert report.skipped == len(report.reasons) >= 1
    assert all("bad range" in reason for reason in report.reasons)
    assert report.kev == len(json.loads(KEV.read_text())["vulnerabilities"])
    again = import_paths(database, [PYPI])
    assert again.added == again.replaced == 0 and again.unchanged == report.imported - 3


def test_changed_record_is_replaced(tmp_path: Path) -> None:
    record = _pip_record("PYSEC-2021-437.yaml")
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    database = open_database(tmp_path)
    import_paths(database, [path])
    before = match_sbom(sbom(pypi("pip", "21.0")), database).findings
    assert [f.fixed_version for f in before] == ["21.1"]
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "21.0.1"}]  # type: ignore[index]
    path.write_text(json.dumps(record))
    report = import_paths(database, [path])
    assert (report.added, report.replaced) == (0, 1)
    assert [f.fixed_version for f in match_sbom(sbom(pypi("pip", "21.0")), database).findings] == ["21.0.1"]
    count = sqlite3.connect(tmp_path / "vuln.db").execute("select count(*) from affected").fetchone()[0]
    assert count == 1  # the old affected row went with the old record


def test_zip_archive_and_malformed_records(tmp_path: Path) -> None:
    good = _pip_record("PYSEC-2023-228.yaml")
    bad_range = json.loads(json.dumps(good)) | {"id": "BAD-RANGE"}
    bad_range["affected"][0]["ranges"][0]["events"] = [{"fixed": "not a version!"}]
    no_id = {k: v for k, v in good.items() if k != "id"}
    unknown = json.loads(json.dumps(good)) | {"id": "UNKNOWN-ECO"}
    unknown["affected"][0]["package"]["ecosystem"] = "NoSuchEcosystem"
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for index, record in enumerate([good, bad_range, no_id, unknown]):
            out.writestr(f"{index}.json", json.dumps(record))
    report = import_paths(open_database(tmp_path), [archive])
    assert report.added == 1 and report.skipped == 3
    joined = " ".join(report.reasons)
    assert "missing id" in joined and "NoSuchEcosystem" in joined and "BAD-RANGE" in joined


def test_unrecognised_input_aborts_and_keeps_previous_database(tmp_path: Path) -> None:
    database = open_database(tmp_path)
    import_paths(database, [PYPI / "pip"])
    before = match_sbom(sbom(pypi("pip", "21.0")), database).findings
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    with pytest.raises(InputError, match="not an OSV record"):
        # The first path would replace pip's records; the whole transaction is rolled back.
        import_paths(database, [PYPI / "setuptools", other])
    assert match_sbom(sbom(pypi("setuptools", "65.5.0")), database).findings == []
    assert match_sbom(sbom(pypi("pip", "21.0")), database).findings == before


def test_withdrawn_record_removes_it(tmp_path: Path) -> None:
    record = _pip_record("PYSEC-2023-228.yaml")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    database = open_database(tmp_path)
    import_paths(database, [path])
    assert match_sbom(sbom(pypi("pip", "23.0")), database).findings
    path.write_text(
        json.dumps(record | {"withdrawn": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z"})
    )
    assert import_paths(database, [path]).withdrawn == 1
    assert match_sbom(sbom(pypi("pip", "23.0")), database).findings == []


def test_large_archives_parse_in_worker_processes_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive of many members is parsed by spawned workers (``_Importer._parallel``); the
    database and the counts are exactly those of the sequential path, in the archive's order."""
    import bastion.vuln._import as importer

    records = [_pip_record(path.name) for path in sorted((PYPI / "pip").glob("*.yaml"))]
    bad = json.loads(json.dumps(records[0])) | {"id": "BAD-RANGE"}
    bad["affected"][0]["ranges"][0]["events"] = [{"fixed": "not a version!"}]
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for index, record in enumerate(records):
            out.writestr(f"{index:04}.json", json.dumps(record))
        out.writestr("bad.json", json.dumps(bad))
        out.writestr("not-json.json", "{")
        out.writestr("list.json", json.dumps([records[1] | {"id": "FROM-A-LIST"}]))  # handled in the parent

    def imported(threshold: int, where: Path) -> tuple[object, list[tuple[object, ...]]]:
        monkeypatch.setattr(importer, "_PARALLEL_MEMBERS", threshold)
        monkeypatch.setattr(importer, "_TASK_MEMBERS", 3)
        report = import_paths(open_database(where), [archive], workers=2)
        with sqlite3.connect(where / "vuln.db") as db:
            rows = db.execute(
                "select source, advisory_id, ecosystem, package, data from affected order by rowid"
            )
            return (report.added, report.skipped, report.reasons), list(rows)

    calls: list[int] = []
    original = importer._Importer._parallel
    break_workers = False

    def spy(self: object, path: Path, archive: object, infos: list[object], workers: int) -> None:
        calls.append(workers)
        if break_workers:
            # The parent has the archive open; the workers open it by name and cannot: the pool
            # breaks, and the parent parses what the workers did not.
            path.rename(path.with_suffix(".moved"))
        try:
            original(self, path, archive, infos, workers)  # type: ignore[arg-type]
        finally:
            if break_workers:
                path.with_suffix(".moved").rename(path)

    monkeypatch.setattr(importer._Importer, "_parallel", spy)
    parallel = imported(1, tmp_path / "parallel")
    sequential = imported(10**9, tmp_path / "sequential")
    break_workers = True
    recovered = imported(1, tmp_path / "recovered")
    assert calls == [2, 2]  # the workers ran for the parallel imports only
    assert parallel == sequential == recovered
    (added, skipped, reasons), rows = parallel
    assert added == len(records) + 1 and skipped == 2 and len(rows) >= len(records)
    assert any("BAD-RANGE" in r for r in reasons) and any("not valid JSON" in r for r in reasons)  # type: ignore[attr-defined]


def _rated(vector: str) -> dict[str, object]:
    return {"id": "GHSA-rate-0001", "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-2099-0002"],
            "severity": [{"type": "CVSS_V3", "score": vector}],
            "affected": [{"package": {"ecosystem": "PyPI", "name": "pip"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99"}]}]}]}  # fmt: skip


CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"  # 5.3


def test_replaced_record_takes_its_old_rating_with_it(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_rated(CRITICAL)))
    database = open_database(tmp_path)
    import_paths(database, [path])
    [finding] = match_sbom(sbom(pypi("pip", "23.0")), database).findings
    assert [c.vector for c in finding.cvss] == [CRITICAL]
    path.write_text(json.dumps(_rated(MEDIUM) | {"modified": "2024-02-01T00:00:00Z"}))
    assert import_paths(database, [path]).replaced == 1
    [finding] = match_sbom(sbom(pypi("pip", "23.0")), database).findings
    assert [c.vector for c in finding.cvss] == [MEDIUM] and finding.max_cvss == 5.3


def test_schema_1_database_is_migrated_with_its_ratings(tmp_path: Path) -> None:
    """A database written before the severities table existed (schema 1) gets it, filled from the
    records it holds, when it is opened: its findings keep their CVSS."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_rated(CRITICAL)))
    import_paths(open_database(tmp_path), [path])
    with sqlite3.connect(tmp_path / "vuln.db") as db:  # what schema 1 looked like
        db.execute("drop table severities")
        db.execute("create table aliases (source varchar(32) not null, advisory_id varchar(128) not null, "
                   "alias varchar(128) not null)")  # fmt: skip
        db.execute("create index ix_aliases_alias on aliases (alias)")
        db.executemany(
            "insert into aliases values ('osv', 'GHSA-rate-0001', ?)",
            [("GHSA-rate-0001",), ("CVE-2099-0002",)],
        )
        db.execute("update meta set value = '1' where key = 'schema'")
    database = open_database(tmp_path)
    [finding] = match_sbom(sbom(pypi("pip", "23.0")), database).findings
    assert finding.max_cvss == 9.8 and set(finding.ids) == {"GHSA-rate-0001", "CVE-2099-0002"}
    with sqlite3.connect(tmp_path / "vuln.db") as db:
        assert db.execute("select value from meta where key = 'schema'").fetchone() == ("2",)
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
        assert "aliases" not in tables and "severities" in tables


def test_database_from_a_newer_bastion_is_refused(tmp_path: Path) -> None:
    open_database(tmp_path).close()
    with sqlite3.connect(tmp_path / "vuln.db") as db:
        db.execute("update meta set value = '99' where key = 'schema'")
    with pytest.raises(InputError, match=r"schema 99.*newer"):
        open_database(tmp_path)


def test_data_token_changes_with_the_data_only(tmp_path: Path) -> None:
    """The token builds compare their CVE-scan attestations with (bastion.vuln._state): new on every
    import that changes a record or the KEV catalogue, in the same transaction; the same otherwise."""
    from bastion.vuln import data_version

    path = tmp_path / "vuln.db"
    assert data_version(path) is None
    database = open_database(tmp_path)
    assert data_version(path) is None  # created, nothing imported
    import_paths(database, [PYPI / "pip", KEV])
    first = data_version(path)
    assert first
    import_paths(database, [PYPI / "pip", KEV])  # the same data again
    assert data_version(path) == first
    record = _pip_record("PYSEC-2021-437.yaml")
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(record | {"modified": "2030-01-01T00:00:00Z", "summary": "edited"}))
    import_paths(database, [changed])
    second = data_version(path)
    assert second not in (None, first)
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    with pytest.raises(InputError):  # rolled back: neither the record nor the token changes
        import_paths(database, [PYPI / "setuptools", other])
    assert data_version(path) == second
    kev = json.loads(KEV.read_text())
    kev["vulnerabilities"] = kev["vulnerabilities"][1:]
    smaller = tmp_path / "kev.json"
    smaller.write_text(json.dumps(kev))
    import_paths(database, [smaller])
    assert data_version(path) not in (None, second)


def test_the_same_record_twice_in_one_input_keeps_the_last(tmp_path: Path) -> None:
    record = _pip_record("PYSEC-2021-437.yaml")
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "r.json").write_text(json.dumps(record))
    (second / "r.json").write_text(json.dumps(record))
    database = open_database(tmp_path)
    report = import_paths(database, [first, second])  # one batch, the same id twice
    assert (report.added, report.superseded) == (1, 1)
    assert [f.fixed_version for f in match_sbom(sbom(pypi("pip", "21.0")), database).findings] == ["21.1"]
    edited = json.loads(json.dumps(record))
    edited["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "21.0.1"}]
    (second / "r.json").write_text(json.dumps(edited | {"modified": "2030-01-01T00:00:00Z"}))
    report = import_paths(database, [first, second])  # the stored copy, then a newer one
    assert (report.replaced, report.superseded) == (1, 1)
    assert [f.fixed_version for f in match_sbom(sbom(pypi("pip", "21.0")), database).findings] == ["21.0.1"]
    report = import_paths(database, [second, first])  # the newer copy, then the one stored before it
    assert (report.replaced, report.superseded) == (1, 1)
    assert [f.fixed_version for f in match_sbom(sbom(pypi("pip", "21.0")), database).findings] == ["21.1"]


def test_database_under_a_home_with_url_characters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bastion.vuln import data_version

    home = tmp_path / "a ?b%41#c"
    import_paths(open_database(home), [PYPI / "pip"])
    assert (home / "vuln.db").is_file() and not (tmp_path / "a ").exists()
    token = data_version(home / "vuln.db")
    assert token
    monkeypatch.chdir(tmp_path)
    assert data_version(Path("a ?b%41#c") / "vuln.db") == token  # a relative BASTION_HOME
