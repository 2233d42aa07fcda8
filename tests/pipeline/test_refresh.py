"""``bastion attest refresh``: the prove, sign and attach stages run again on their own for an image in
the store, as the factory will when only the vulnerability data changed: a new CVE scan signed and
attached, the image itself untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import CliResult, catalog_copy, home_sharing_cache, run_cli
from tests.vuln.helpers import tracker_release, write_tracker

PLATFORM = "linux/amd64"
IMAGE = "bastion/static:12"
CVE_SCAN = "https://cosign.sigstore.dev/attestation/vuln/v1"
OPENVEX = "https://openvex.dev/ns/v0.2.0"
NO_PASSWORD = {"BASTION_PASSWORD": ""}


def _refresh(home: Path, key: Path, *extra: str) -> CliResult:
    return run_cli(
        "attest", "refresh", IMAGE, "--key", str(key), "--format", "json", *extra, home=home, env=NO_PASSWORD
    )


def _newest_verified_scan(home: Path, public: Path) -> dict[str, Any]:
    got = run_cli(
        "attest", "get", IMAGE, "--type", "cves", "--verify", "--key", str(public), "--platform", PLATFORM,
        home=home,
    )  # fmt: skip
    assert got.code == 0, got.stderr
    predicate: dict[str, Any] = json.loads(got.stdout)
    return predicate


def _found(predicate: dict[str, Any]) -> set[str]:
    return {f["id"] for f in predicate["scanner"]["result"]["findings"]}


@pytest.mark.mirror
@pytest.mark.slow
def test_refresh_signs_a_new_cve_scan_when_only_the_vulnerability_data_changed(
    tmp_path: Path, cached_home: Path
) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    prefix = tmp_path / "release"
    made = run_cli("keygen", "--output-key-prefix", str(prefix), home=home, env=NO_PASSWORD)
    assert made.code == 0, made.stderr
    key, public = prefix.with_suffix(".key"), prefix.with_suffix(".pub")
    built = run_cli(
        "build", str(definition), "--locked", "--platform", PLATFORM, "--key", str(key), "--format", "json",
        home=home, env=NO_PASSWORD,
    )  # fmt: skip
    assert built.code == 0, built.stderr
    (variant,) = json.loads(built.stdout)
    digest = variant["platforms"][PLATFORM]["digest"]

    # Vulnerability data arrives after the build: refresh scans the stored image and signs the result.
    first = write_tracker(tmp_path / "first.json", {"tzdata": {"CVE-2999-7001": tracker_release("open")}})
    assert run_cli("db", "import", str(first), home=home).code == 0
    refreshed = _refresh(home, key, "--only", "cve-scan,openvex")
    assert refreshed.code == 0, refreshed.stderr
    (row,) = json.loads(refreshed.stdout)["platforms"]
    assert row["digest"] == digest and CVE_SCAN in row["attached"]
    assert set(row["attached"]) <= {CVE_SCAN, OPENVEX}
    assert "CVE-2999-7001" in _found(_newest_verified_scan(home, public))

    # The same data again: nothing to do (a factory job re-run is a no-op).
    again = _refresh(home, key)
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["platforms"][0]["attached"] == []

    # New data: a new scan, the newest verified one, made from it; the image is the same.
    second = write_tracker(tmp_path / "second.json", {"tzdata": {"CVE-2999-7002": tracker_release("open")}})
    assert run_cli("db", "import", str(second), home=home).code == 0
    refreshed = _refresh(home, key, "--only", "cves")
    assert refreshed.code == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["platforms"] == [
        {"platform": PLATFORM, "digest": digest, "attached": [CVE_SCAN]}
    ]
    assert "CVE-2999-7002" in _found(_newest_verified_scan(home, public))
    listed = run_cli("attest", "list", IMAGE, "--format", "json", home=home)
    assert listed.code == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["digest"] == variant["digest"]  # the tag still names the image the build wrote
    scans = [a for a in document["attestations"] if a["predicateType"] == CVE_SCAN]
    assert [a["subject"] for a in scans] == [digest, digest]


def test_refresh_refuses_what_no_producer_makes_and_images_not_in_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    unknown = run_cli("attest", "refresh", IMAGE, "--only", "cves,sbomish", home=home)
    assert unknown.code == 2 and "no producer makes 'sbomish'" in unknown.stderr
    absent = run_cli("attest", "refresh", IMAGE, "--only", "cves", home=home)
    assert absent.code == 2 and IMAGE in absent.stderr
