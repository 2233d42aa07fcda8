"""Syft and Trivy see every Debian package of the python runtime image, through
``/var/lib/dpkg/status.d`` (the runtime image has no ``/var/lib/dpkg/status``), and nothing else.

The image is built with the real command from the committed lock file and exported as an OCI layout;
the expected packages are the lock file's, so a package the scanners miss (or invent) fails here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL

from tests.conftest import REPO_ROOT, run_cli
from tests.scanners.scan import Report, syft_scan, trivy_scan

# The scanners are installed by scripts/test (scripts/scanners, from PyPI and npm like every other
# test dependency); with them installed this needs no network beyond the Debian mirror, and without
# them it is skipped, saying so (tests/scanners/conftest.py).
pytestmark = [pytest.mark.mirror, pytest.mark.slow]

DEFINITION = REPO_ROOT / "catalog" / "python" / "python.yaml"
LOCK = DEFINITION.with_name("python.lock.json")
IMAGE = "bastion/python:3.11"  # python.yaml: image bastion/python, first tag 3.11
PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class Scanned:
    syft: Report
    trivy: Report
    syft_raw: dict[str, Any]  # the syft-json document as parsed


def locked_packages() -> set[tuple[str, str]]:
    lock = json.loads(LOCK.read_text())
    return {(p["name"], p["version"]) for p in lock["variants"]["runtime"][PLATFORM]["packages"]}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, cached_home: Path, syft: Path, trivy: Path) -> Scanned:
    built = run_cli(
        "build", str(DEFINITION), "--locked", "--variant", "runtime", "--platform", PLATFORM, "--skip-tests",
        home=cached_home,
    )  # fmt: skip
    assert built.code == 0, built.stderr
    assert built.stdout.startswith(f"{IMAGE} sha256:"), built.stdout
    tmp = tmp_path_factory.mktemp("status-d")
    layout = tmp / "layout"
    exported = run_cli(
        "export",
        IMAGE,
        f"oci-dir://{layout}:3.11",
        "--platform",
        PLATFORM,
        "--no-attestations",
        home=cached_home,
    )
    assert exported.code == 0, exported.stderr
    syft_out = tmp / "syft.json"
    syft_report = syft_scan(syft, f"oci-dir:{layout}", syft_out)
    trivy_report = trivy_scan(trivy, f"image:{layout}", tmp / "trivy.cdx.json", tmp / "trivy-cache")
    return Scanned(syft_report, trivy_report, json.loads(syft_out.read_text()))


def test_lock_file_has_the_runtime_packages() -> None:
    # Guards the comparison below against an empty or renamed lock entry.
    assert len(locked_packages()) >= 20
    assert ("python3.11", next(v for n, v in locked_packages() if n == "python3.11")) in locked_packages()


def test_syft_finds_exactly_the_locked_packages(scanned: Scanned) -> None:
    expected = locked_packages()
    found = scanned.syft.of_type("deb")
    assert found == expected, f"missing {sorted(expected - found)}, extra {sorted(found - expected)}"
    # Nothing else either: python3.11's files are owned by its package (status.d/<name>.md5sums lists
    # them), so Syft's binary classifier must not report a second "python".
    assert scanned.syft.counts() == {"deb": len(expected)}


def test_syft_reads_each_package_from_status_d(scanned: Scanned) -> None:
    for artifact in scanned.syft_raw["artifacts"]:
        primary = [
            loc["path"]
            for loc in artifact["locations"]
            if loc.get("annotations", {}).get("evidence") == "primary"
        ]
        assert primary == [f"/var/lib/dpkg/status.d/{artifact['name']}"], artifact["name"]
        # The md5sums file was found beside it and gave the file list.
        assert artifact["metadata"]["files"], f"{artifact['name']}: no files from status.d/*.md5sums"


def test_trivy_finds_exactly_the_locked_packages(scanned: Scanned) -> None:
    expected = locked_packages()
    found = scanned.trivy.of_type("debian")
    assert found == expected, f"missing {sorted(expected - found)}, extra {sorted(found - expected)}"
    assert scanned.trivy.counts() == {"debian": len(expected)}
    for package in scanned.trivy.packages:
        purl = PackageURL.from_string(package.purl)
        assert (purl.type, purl.namespace) == ("deb", "debian"), package.purl


def test_trivy_identifies_debian_12(scanned: Scanned) -> None:
    # Trivy's debian OS analyzer reads /etc/debian_version (base-files), not os-release.
    assert scanned.trivy.distro_id == "debian"
    assert scanned.trivy.distro_version.split(".")[0] == "12", scanned.trivy.distro_version


def test_syft_matches_debian_12(scanned: Scanned) -> None:
    # Syft (and Grype after it) take the distro from os-release: ID, else ID_LIKE, with VERSION_ID.
    assert "debian" in (scanned.syft.distro_id, *scanned.syft.distro_like)
    assert scanned.syft.distro_version == "12"


def test_syft_names_the_distro_debian(scanned: Scanned) -> None:
    assert scanned.syft.distro_id == "debian"
    for package in scanned.syft.packages:
        purl = PackageURL.from_string(package.purl)
        assert purl.namespace == "debian", package.purl
        assert isinstance(purl.qualifiers, dict) and purl.qualifiers.get("distro") == "debian-12", (
            package.purl
        )
