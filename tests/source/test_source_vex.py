"""A patch that fixes a CVE closes it in the scan: the OpenVEX document a source build keeps with Bastion's
repository makes ``bastion cves`` list the CVE as fixed by Bastion's build (named on stderr, in the
report's suppressed list with the statement), and ``bastion vex`` state it ``fixed``, for the package at
its ``+bastion<N>`` version only; without the document, or for Debian's own version, the CVE is open.
Offline: the document is made by the source build's own code (``make_proofs``), the scanned tree holds a
dpkg database, the vulnerability data is a tracker feed."""

from __future__ import annotations

import json
from pathlib import Path

from bastion.attest import ephemeral_signer
from bastion.debian import PackageRecord, SourceFile, SourceRecord
from bastion.source import BuildFacts, make_proofs
from tests.conftest import run_cli
from tests.vuln.helpers import tracker_release, write_tracker

CVE = "CVE-2099-0001"
DEBIAN = "1:1.2.13.dfsg-1"
OURS = f"{DEBIAN}+bastion1"


def _tree(root: Path, version: str) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (root / "var" / "lib" / "dpkg").mkdir(parents=True)
    (root / "var" / "lib" / "dpkg" / "status").write_text(
        f"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: {version}\n"
        "Maintainer: Bastion <builder@bastion.invalid>\nDescription: compression library\n\n"
    )
    return root


def _publish_proofs(home: Path, definition: Path) -> list[str]:
    dsc = SourceFile("zlib_1.2.13.dfsg-1.dsc", "a" * 64, 100)
    record = SourceRecord("zlib", DEBIAN, "pool/main/z/zlib", "3.0 (quilt)", (dsc,), "", "", "",
                          "http://127.0.0.1:1/debian", "bookworm", "b" * 64)  # fmt: skip
    gcc = PackageRecord("gcc-12", "12.2.0-14", "amd64", "gcc-12", "12.2.0-14", "", "", "", "pool/g.deb", 1,
                        "c" * 64, "", False, "optional", "", "http://127.0.0.1:1/debian", "bookworm")  # fmt: skip
    facts = BuildFacts(
        definition=definition, source=record, version=OURS, revision=1, arch="amd64",
        patches=(("bastion-01-fix.patch", "d" * 64),), build_root=(gcc,), build_root_digest="e" * 64,
        debs=((f"zlib1g_{OURS.split(':')[1]}_amd64.deb", "f" * 64, "zlib1g"),),
        fixes=(("bastion-01-fix.patch", (CVE,)),), source_date_epoch=0,
        started_on="2024-01-01T00:00:00Z", finished_on="2024-01-01T00:01:00Z",
    )  # fmt: skip
    files = make_proofs(facts, ephemeral_signer())
    for name, data in files.items():
        (home / "repository" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "repository" / name).write_bytes(data)
    return sorted(files)


def _cves(tree: Path, home: Path) -> tuple[dict[str, list[dict[str, object]]], str]:
    result = run_cli("cves", f"fs://{tree}", "--format", "json", home=home)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def _ids(entries: list[dict[str, object]]) -> set[object]:
    return {entry["id"] for entry in entries}


def test_a_patch_that_fixes_a_cve_closes_it_in_the_scan(tmp_path: Path) -> None:
    home = tmp_path / "home"
    feed = write_tracker(tmp_path / "tracker.json", {"zlib": {CVE: tracker_release("open", shipped=DEBIAN)}})
    assert run_cli("db", "import", str(feed), home=home).code == 0
    ours, debian = _tree(tmp_path / "ours", OURS), _tree(tmp_path / "debian", DEBIAN)

    before, _ = _cves(ours, home)  # without the patch's VEX: open
    assert CVE in _ids(before["findings"])

    definition = tmp_path / "zlib.yaml"
    definition.write_text("source: zlib\nreason: test\n")
    names = _publish_proofs(home, definition)
    assert names == ["provenance/zlib/1.2.13.dfsg-1+bastion1_amd64.sigstore.json",
                     "vex/zlib_1.2.13.dfsg-1+bastion1_amd64.openvex.json"]  # fmt: skip

    after, stderr = _cves(ours, home)
    assert CVE not in _ids(after["findings"])
    [fixed] = [s for s in after["suppressed"] if s["id"] == CVE]
    assert json.dumps(fixed).count("fixed") >= 1 and "Bastion source build" in json.dumps(fixed)
    assert f"{CVE} in zlib1g {OURS}: fixed by Bastion's build" in stderr

    other, _ = _cves(debian, home)  # Debian's own version is not Bastion's build: still open
    assert CVE in _ids(other["findings"])

    vex = run_cli("vex", f"fs://{ours}", home=home)
    assert vex.code == 0, vex.stderr
    [statement] = [s for s in json.loads(vex.stdout)["statements"] if s["vulnerability"]["name"] == CVE]
    assert statement["status"] == "fixed" and "zlib1g" in json.dumps(statement["products"])


def test_the_repository_speaks_only_for_bastion_packages(tmp_path: Path) -> None:
    """A document dropped in the repository's vex/ that states a Debian version (or anything but
    ``fixed``) silences nothing."""
    home = tmp_path / "home"
    feed = write_tracker(tmp_path / "tracker.json", {"zlib": {CVE: tracker_release("open", shipped=DEBIAN)}})
    assert run_cli("db", "import", str(feed), home=home).code == 0
    debian = _tree(tmp_path / "debian", DEBIAN)
    statements = [
        {"vulnerability": {"name": CVE}, "products": [{"@id": f"pkg:deb/debian/zlib1g@{DEBIAN}?arch=amd64"}],
         "status": "fixed"},
        {"vulnerability": {"name": CVE}, "products": [{"@id": "pkg:deb/debian/zlib1g"}],
         "status": "not_affected", "justification": "vulnerable_code_not_present"},
    ]  # fmt: skip
    (home / "repository" / "vex").mkdir(parents=True)
    (home / "repository" / "vex" / "planted.openvex.json").write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/planted",
        "author": "someone", "timestamp": "2024-01-01T00:00:00Z", "version": 1, "statements": statements}))  # fmt: skip
    data, _ = _cves(debian, home)
    assert CVE in _ids(data["findings"])
