"""Issue 16, "shown when done": the holdout check that found VEX ignoring the index digest, on a real
built image. A tracker feed with six tracker states and a KEV entry, made from the image's own SBOM, and
an OpenVEX document written against the digest ``bastion build`` printed (the index) or against the
platform manifest: both suppress exactly what they name, and a document naming another image suppresses
nothing and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packageurl import PackageURL

from tests.conftest import REPO_ROOT, run_cli
from tests.vuln.helpers import tracker_release, write_tracker

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

IMAGE = "bastion/python:3.11"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> tuple[Path, str, str, str]:
    """The python runtime for amd64 in a fresh store: (home, index digest, platform digest, libssl3 version)."""
    home = tmp_path_factory.mktemp("holdout") / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    result = run_cli("build", "catalog/python/python.yaml", "--locked", "--variant", "runtime", "--platform",
                     "linux/amd64", "--skip-tests", "--no-attest", home=home, cwd=REPO_ROOT)  # fmt: skip
    assert result.code == 0, result.stderr
    index = result.stdout.split()[1]
    platform = json.loads(run_cli("inspect", IMAGE, home=home).stdout)["platforms"][0]["digest"]
    sbom = run_cli("sbom", IMAGE, "--format", "spdx-json", home=home)
    assert sbom.code == 0, sbom.stderr
    purls = [
        r["referenceLocator"] for p in json.loads(sbom.stdout)["packages"] for r in p.get("externalRefs", [])
    ]
    version = next(
        PackageURL.from_string(p).version for p in purls if p.startswith("pkg:deb/debian/libssl3@")
    )
    assert version and index.startswith("sha256:") and platform.startswith("sha256:") and index != platform
    return home, index, platform, str(version)


def _feeds(tmp: Path, version: str) -> list[Path]:
    tracker = write_tracker(tmp / "tracker.json", {"openssl": {
        "CVE-2999-1001": tracker_release("resolved", fixed_version=version + "+z1", urgency="high"),
        "CVE-2999-1002": tracker_release("resolved", fixed_version="3.0.0-1", urgency="low"),
        "CVE-2999-1003": tracker_release("open", urgency="high"),
        "CVE-2999-1004": tracker_release("open", urgency="low", nodsa="Minor issue", nodsa_reason=""),
        "CVE-2999-1005": tracker_release("open", urgency="low", nodsa="Later", nodsa_reason="postponed"),
        "CVE-2999-1006": tracker_release("undetermined"),
        "CVE-2999-1007": tracker_release("open", urgency="unimportant"),
    }})  # fmt: skip
    kev = tmp / "kev.json"
    kev.write_text(json.dumps({
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2099.01.01",
        "dateReleased": "2099-01-01T00:00:00.000Z", "count": 1,
        "vulnerabilities": [{"cveID": "CVE-2999-1003", "vendorProject": "OpenSSL", "product": "OpenSSL",
                             "vulnerabilityName": "test", "dateAdded": "2099-01-01", "shortDescription": "test",
                             "requiredAction": "update", "dueDate": "2099-01-22",
                             "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": []}],
    }))  # fmt: skip
    return [tracker, kev]


def _vex(path: Path, product: str) -> Path:
    statements = [
        {"vulnerability": {"name": cve}, "products": [{"@id": product, "subcomponents": [{"@id": "pkg:deb/debian/libssl3"}]}],
         "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}
        for cve in ("CVE-2999-1003", "CVE-2999-1006")
    ]  # fmt: skip
    path.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/holdout",
                                "author": "Platform security", "timestamp": "2099-01-01T00:00:00Z", "version": 1,
                                "statements": statements}))  # fmt: skip
    return path


def _scan(home: Path, *extra: str) -> tuple[dict[str, str], set[str], str]:
    result = run_cli("cves", IMAGE, "--format", "json", *extra, home=home)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    known = {f["id"] for f in (*report["findings"], *report.get("suppressed", [])) if f.get("kev")}
    assert known == {"CVE-2999-1003"}, known
    findings = {f["id"]: f["state"] for f in report["findings"] if f["id"].startswith("CVE-2999-")}
    suppressed = {f["id"] for f in report.get("suppressed", []) if f["id"].startswith("CVE-2999-")}
    return findings, suppressed, result.stderr


def test_vex_against_the_index_or_the_platform_digest_suppresses_what_it_names(
    built: tuple[Path, str, str, str], tmp_path: Path
) -> None:
    home, index, platform, version = built
    imported = run_cli("db", "import", *map(str, _feeds(tmp_path, version)), home=home)
    assert imported.code == 0, imported.stderr
    findings, suppressed, _ = _scan(home)
    # Six tracker states, and the fix below the shipped version is no finding.
    assert findings == {
        "CVE-2999-1001": "fixed", "CVE-2999-1003": "open", "CVE-2999-1004": "no-dsa",
        "CVE-2999-1005": "postponed", "CVE-2999-1006": "undetermined", "CVE-2999-1007": "unimportant",
    }  # fmt: skip
    assert suppressed == set()
    products = {
        "index purl": f"pkg:oci/python@{index.replace(':', '%3A')}",
        "bare index digest": index,
        "platform purl": f"pkg:oci/python@{platform.replace(':', '%3A')}",
        "bare platform digest": platform,
    }
    for label, product in products.items():
        vex = _vex(tmp_path / f"{label.replace(' ', '-')}.vex.json", product)
        findings, suppressed, stderr = _scan(home, "--vex", str(vex))
        assert suppressed == {"CVE-2999-1003", "CVE-2999-1006"}, (label, stderr)
        assert set(findings) == {"CVE-2999-1001", "CVE-2999-1004", "CVE-2999-1005", "CVE-2999-1007"}, label
        assert "2 statements, 2 applied" in stderr, stderr
    other = _vex(tmp_path / "other.vex.json", "pkg:oci/python@sha256%3A" + "0" * 64)
    findings, suppressed, stderr = _scan(home, "--vex", str(other))
    assert suppressed == set() and "CVE-2999-1003" in findings
    assert "2 statements, 0 applied" in stderr and "warning" in stderr
