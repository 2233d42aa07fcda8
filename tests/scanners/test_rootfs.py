"""The larger sample root filesystem (``rootfs.py``), scanned by Syft and Trivy as a directory and as
an OCI layout. Each scan's package list is kept under ``.cache/scanners/rootfs/<key>/scans/`` for later
SBOM comparisons; these tests check the scans against what was really installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from debian.deb822 import Deb822

from tests.scanners.rootfs import APP, PIP_PINS, SCANS, SampleRootfs, sample_rootfs, scan_sample
from tests.scanners.scan import Report

pytestmark = [pytest.mark.network, pytest.mark.mirror, pytest.mark.slow]

# The tools' words for the same kind of package.
DEBIAN = ("deb", "debian")
PYTHON = ("python", "python-pkg")
NPM = ("npm", "node-pkg")


@pytest.fixture(scope="module")
def sample(cached_home: Path) -> SampleRootfs:
    return sample_rootfs(mirror=cached_home)


@pytest.fixture(scope="module")
def reports(sample: SampleRootfs, syft: Path, trivy: Path) -> dict[str, Report]:
    return scan_sample(sample, syft, trivy)


def dpkg_status(root: Path) -> set[tuple[str, str]]:
    with (root / "var" / "lib" / "dpkg" / "status").open() as f:
        return {(p["Package"], p["Version"]) for p in Deb822.iter_paragraphs(f)}


def npm_installed(root: Path) -> set[tuple[str, str]]:
    """Every package in package-lock.json (v3: key ``node_modules/<name>``), and the app itself."""
    lock = json.loads((root / APP / "package-lock.json").read_text())
    found = set()
    for key, entry in lock["packages"].items():
        name = key.rpartition("node_modules/")[2] if key else entry["name"]
        found.add((name, entry["version"]))
    return found


def test_sample_holds_what_was_asked(sample: SampleRootfs) -> None:
    status = dpkg_status(sample.root)
    assert {f"{n}={v}" for n, v in status} == sample.debian
    assert {"python3-pip", "age", "python3.11"} <= {n for n, _ in status}
    assert (sample.root / "usr" / "bin" / "age").is_file()
    assert len(npm_installed(sample.root)) > 40  # express brings its dependencies
    index = json.loads((sample.layout / "index.json").read_text())
    assert len(index["manifests"]) == 1  # what syft's oci-dir: needs


@pytest.mark.parametrize("scan", sorted(SCANS))
def test_scan_finds_every_debian_package(sample: SampleRootfs, reports: dict[str, Report], scan: str) -> None:
    expected = dpkg_status(sample.root)
    found = reports[scan].of_type(*DEBIAN)
    assert found == expected, f"missing {sorted(expected - found)}, extra {sorted(found - expected)}"


@pytest.mark.parametrize("scan", sorted(SCANS))
def test_scan_finds_the_pip_installed_wheels(reports: dict[str, Report], scan: str) -> None:
    pinned = {tuple(pin.split("==")) for pin in PIP_PINS}
    found = reports[scan].of_type(*PYTHON)
    assert pinned <= found, f"missing {sorted(pinned - found)}"


@pytest.mark.parametrize("scan", sorted(SCANS))
def test_scan_finds_every_npm_package(sample: SampleRootfs, reports: dict[str, Report], scan: str) -> None:
    expected = npm_installed(sample.root)
    found = reports[scan].of_type(*NPM)
    assert found == expected, f"missing {sorted(expected - found)}, extra {sorted(found - expected)}"


@pytest.mark.parametrize("scan", ["syft-dir", "syft-oci"])
def test_syft_finds_the_debian_go_program(reports: dict[str, Report], scan: str) -> None:
    go = {(p.name, p.path) for p in reports[scan].packages if p.type == "go-module"}
    assert ("filippo.io/age/cmd/age", "/usr/bin/age") in go


def test_trivy_image_leaves_out_debian_owned_python_packages(reports: dict[str, Report]) -> None:
    """Trivy drops a language package a distribution package owns only when the owner's ``info/*.list``
    is in the same layer as its files; Bastion puts each package's dpkg records in its files' layer
    (:mod:`bastion.pipeline._layers`), so ``trivy image`` does not report Debian's pip, setuptools and
    wheel as PyPI packages either, exactly as ``trivy rootfs`` does not."""
    found = reports["trivy-image"].of_type(*PYTHON)
    assert found == reports["trivy-rootfs"].of_type(*PYTHON)
    assert {name for name, _ in found}.isdisjoint({"pip", "setuptools", "wheel"})
