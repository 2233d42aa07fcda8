from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bastion.config import Settings
from bastion.sbom import scan_image
from bastion.vuln import Severity, SqlVulnDatabase, State, import_paths, match_sbom, open_database
from tests.vuln.helpers import KEV, PYPI, TRACKER, deb, pypi, sbom, tracker_release, write_tracker


def _record(package: str, name: str) -> dict[str, object]:
    return yaml.load((PYPI / package / name).read_text(), Loader=yaml.BaseLoader)  # type: ignore[no-any-return]


def _fixed_event(record: dict[str, object]) -> str:
    ranges = record["affected"][0]["ranges"]  # type: ignore[index]
    events = next(r["events"] for r in ranges if r["type"] == "ECOSYSTEM")
    return next(e["fixed"] for e in events if "fixed" in e)  # type: ignore[no-any-return]


def _dist_info(root: Path, name: str, version: str) -> None:
    """A dist-info directory as pip writes it (core metadata 2.1)."""
    info = root / "usr/lib/python3/dist-packages" / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n"
    )
    (info / "RECORD").write_text("")


def test_real_pip_and_setuptools_advisories(tmp_path: Path, real_db: SqlVulnDatabase) -> None:
    root = tmp_path / "root"
    _dist_info(root, "pip", "21.0")
    _dist_info(root, "setuptools", "65.5.0")
    scanned = scan_image(f"fs://{root}", Settings(tmp_path / "home"))
    result = match_sbom(scanned, real_db)
    found = {(f.package.name, f.id): f for f in result.findings}
    pip_2021 = _record("pip", "PYSEC-2021-437.yaml")
    pip_2023 = _record("pip", "PYSEC-2023-228.yaml")
    setuptools = _record("setuptools", "PYSEC-2022-43012.yaml")
    for package, record in (("pip", pip_2021), ("pip", pip_2023), ("setuptools", setuptools)):
        cve = next(a for a in record["aliases"] if a.startswith("CVE-"))  # type: ignore[attr-defined]
        finding = found[(package, cve)]
        assert record["id"] in finding.aliases  # PYSEC merged into the CVE
        assert finding.state is State.FIXED and finding.fixed_version == _fixed_event(record)
    # pip 21.0 is past the fix of PYSEC-2013-8 (fixed in 1.3): kept for VEX "fixed", not a finding.
    old = _record("pip", "PYSEC-2013-8.yaml")
    assert any(old["id"] in (m.id, *m.aliases) for m in result.fixed)
    assert not any(old["id"] in f.ids for f in result.findings)
    # A version after every fix has no finding.
    assert match_sbom(sbom(pypi("pip", "24.0"), pypi("setuptools", "70.0.0")), real_db).findings == []


@pytest.mark.network
def test_pip_install_target_tree(tmp_path: Path, real_db: SqlVulnDatabase) -> None:
    import subprocess
    import sys

    site = tmp_path / "root" / "usr/lib/python3/dist-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    "pip==21.0", "setuptools==65.5.0"], check=True)  # fmt: skip
    result = match_sbom(scan_image(f"fs://{tmp_path / 'root'}", Settings(tmp_path / "home")), real_db)
    assert {f.id for f in result.findings} >= {"CVE-2021-3572", "CVE-2023-5752", "CVE-2022-40897"}


def test_every_tracker_state(tmp_path: Path) -> None:
    shipped = "3.0.11-1~deb12u2"
    feed = write_tracker(tmp_path / "tracker.json", {"openssl": {
        "CVE-1-FIXED-LATER": tracker_release("resolved", fixed_version="3.0.13-1~deb12u1", urgency="medium"),
        "CVE-2-FIXED-BEFORE": tracker_release("resolved", fixed_version="3.0.9-1", urgency="high"),
        "CVE-3-NEVER": tracker_release("resolved", fixed_version="0", urgency="unimportant"),
        "CVE-4-OPEN": tracker_release("open", urgency="not yet assigned"),
        "CVE-5-NODSA": tracker_release("open", urgency="low", nodsa="Minor issue", nodsa_reason=""),
        "CVE-6-POSTPONED": tracker_release("open", urgency="low", nodsa="Minor issue", nodsa_reason="postponed"),
        "CVE-7-IGNORED": tracker_release("open", urgency="low", nodsa="Minor issue", nodsa_reason="ignored"),
        "CVE-8-EOL": tracker_release("open", urgency="end-of-life"),
        "CVE-9-UNIMPORTANT": tracker_release("open", urgency="unimportant"),
        "CVE-10-UNDETERMINED": tracker_release("undetermined", urgency="not yet assigned"),
    }})  # fmt: skip
    database = open_database(tmp_path)
    import_paths(database, [feed])
    result = match_sbom(sbom(deb("libssl3", shipped, "openssl")), database)
    states = {f.id: f for f in result.findings}
    assert {k: (v.state, v.fixed_version) for k, v in states.items()} == {
        "CVE-1-FIXED-LATER": (State.FIXED, "3.0.13-1~deb12u1"),
        "CVE-4-OPEN": (State.OPEN, None),
        "CVE-5-NODSA": (State.NO_DSA, None),
        "CVE-6-POSTPONED": (State.POSTPONED, None),
        "CVE-7-IGNORED": (State.IGNORED, None),
        "CVE-8-EOL": (State.END_OF_LIFE, None),
        "CVE-9-UNIMPORTANT": (State.UNIMPORTANT, None),
        "CVE-10-UNDETERMINED": (State.UNDETERMINED, None),
    }
    assert states["CVE-5-NODSA"].note == "Minor issue"  # no-dsa is "minor issue", still affected
    assert states["CVE-1-FIXED-LATER"].severity is Severity.MEDIUM  # Debian's urgency
    assert states["CVE-9-UNIMPORTANT"].severity is Severity.NEGLIGIBLE
    assert [m.id for m in result.fixed] == ["CVE-2-FIXED-BEFORE"]
    # Matched by source package: a binary of another source is untouched.
    assert match_sbom(sbom(deb("libssl3", shipped, "not-openssl")), database).findings == []


def test_real_tracker_sample(real_db: SqlVulnDatabase) -> None:
    sample = json.loads(TRACKER.read_text())["apparmor"]
    shipped = sample["CVE-2016-1585"]["releases"]["bookworm"]["repositories"]["bookworm"]
    result = match_sbom(sbom(deb("libapparmor1", shipped, "apparmor")), real_db)
    assert [(f.id, f.state, f.urgency) for f in result.findings] == [
        ("CVE-2016-1585", State.UNIMPORTANT, "unimportant")
    ]
    assert "CVE-2014-1424" not in {m.id for m in result.fixed}  # fixed_version "0": never affected
    assert [m.id for m in result.fixed] == ["CVE-2017-6507"]


def test_aliases_merge_and_debian_urgency_beats_cvss(tmp_path: Path) -> None:
    ghsa = {"id": "GHSA-test-0001", "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-2099-0001", "DSA-9999-1"],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1"}]}]}]}  # fmt: skip
    dsa = {"id": "DSA-9999-1", "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-2099-0001"],
           "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1"}]}]}]}  # fmt: skip
    (tmp_path / "osv").mkdir()
    (tmp_path / "osv" / "a.json").write_text(json.dumps(ghsa))
    (tmp_path / "osv" / "b.json").write_text(json.dumps(dsa))
    feed = write_tracker(
        tmp_path / "t.json",
        {"openssl": {"CVE-2099-0001": tracker_release("resolved", fixed_version="3.0.13-1", urgency="low")}},
    )
    database = open_database(tmp_path)
    import_paths(database, [tmp_path / "osv", feed])
    findings = match_sbom(sbom(deb("libssl3", "3.0.11-1", "openssl")), database).findings
    assert len(findings) == 1  # three records, one vulnerability
    finding = findings[0]
    assert finding.id == "CVE-2099-0001" and set(finding.aliases) == {"GHSA-test-0001", "DSA-9999-1"}
    assert finding.severity is Severity.LOW and finding.severity_source == "debian"
    assert finding.max_cvss == 9.8  # the CVSS is shown beside Debian's urgency
    # Without the tracker's verdict, OSV's Debian records decide, with their fixed version.
    only_osv = open_database(tmp_path / "osv-only")
    import_paths(only_osv, [tmp_path / "osv"])
    [alone] = match_sbom(sbom(deb("libssl3", "3.0.11-1", "openssl")), only_osv).findings
    assert (alone.state, alone.fixed_version) == (State.FIXED, "3.0.13-1")
    assert match_sbom(sbom(deb("libssl3", "3.0.13-1", "openssl")), only_osv).findings == []


def test_kev_flag(tmp_path: Path, real_db: SqlVulnDatabase) -> None:
    kev = {v["cveID"] for v in json.loads(KEV.read_text())["vulnerabilities"]}
    for path in sorted(PYPI.rglob("*.yaml")):
        record = yaml.load(path.read_text(), Loader=yaml.BaseLoader)
        versions = record.get("affected", [{}])[0].get("versions") or []
        if set(record.get("aliases", [])) & kev and versions and not record.get("withdrawn"):
            break
    else:
        pytest.skip("no PyPI advisory in the data names a KEV CVE")
    name = record["affected"][0]["package"]["name"]
    findings = match_sbom(sbom(pypi(name, versions[-1])), real_db).findings
    flagged = [f for f in findings if record["id"] in f.ids]
    assert flagged and flagged[0].kev
    assert not any(f.kev for f in findings if not set(f.ids) & kev)
