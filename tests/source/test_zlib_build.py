"""The catalog's example: zlib rebuilt from Debian's source with Bastion's patch, twice, to the same bytes
(``--check``), published to the local repository whose InRelease verifies with gpgv, with its signed provenance
and the OpenVEX document of what its patch fixes. Uses the mirror and
takes minutes (the build root is cached by its package set after the first run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.attest import PROVENANCE_PREDICATE_TYPE, Verifier, verify_bundle
from bastion.identifiers import SLSA_BUILDER_ID, SLSA_SOURCE_BUILD_TYPE
from tests.conftest import REPO_ROOT, home_sharing_cache, run_cli

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.slow,
    pytest.mark.buildroot,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("bwrap") is None, reason="builds run as root in bwrap"
    ),
]


def test_zlib_rebuilds_reproducibly_and_publishes(tmp_path: Path, cached_home: Path) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    result = run_cli(
        "source", "build", str(REPO_ROOT / "catalog/packages/zlib/zlib.yaml"), "--check", home=home
    )
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["version"] == "1:1.2.13.dfsg-1+bastion1" and summary["reproducible"] is True
    assert summary["fixes"] == ["CVE-2099-0001"]
    names = {p["name"] for p in summary["packages"]}
    assert "zlib1g_1.2.13.dfsg-1+bastion1_amd64.deb" in names
    inrelease = home / "repository" / "dists" / "bastion" / "InRelease"
    keyring = home / "repository" / "bastion-archive-keyring.gpg"
    assert (
        subprocess.run(
            ["gpgv", "--keyring", str(keyring), str(inrelease)], capture_output=True, check=False
        ).returncode
        == 0
    )
    packages = (home / "repository" / "dists" / "bastion" / "main" / "binary-amd64" / "Packages").read_text()
    assert "Package: zlib1g\n" in packages and "Version: 1:1.2.13.dfsg-1+bastion1\n" in packages
    # Item 6: the build's signed SLSA provenance is kept with the repository, and the patch's fixes
    # are stated fixed in an OpenVEX document for the packages at their +bastion version.
    proofs = summary["proofs"]
    bundle = home / "repository" / "provenance" / "zlib" / "1.2.13.dfsg-1+bastion1_amd64.sigstore.json"
    assert str(bundle) in proofs
    statement = verify_bundle(bundle.read_bytes(), Verifier.from_files([home / "keys" / "bastion.pub"]))
    assert statement.predicate_type == PROVENANCE_PREDICATE_TYPE
    debs = {p["name"]: p["sha256"] for p in summary["packages"]}
    assert {s.name: s.digest["sha256"] for s in statement.subject} == debs
    predicate = statement.predicate
    assert predicate["buildDefinition"]["buildType"] == SLSA_SOURCE_BUILD_TYPE
    assert predicate["runDetails"]["builder"]["id"] == SLSA_BUILDER_ID
    resolved = {d["digest"]["sha256"]: d for d in predicate["buildDefinition"]["resolvedDependencies"]}
    assert summary["dsc"]["sha256"] in resolved
    assert all(p["sha256"] in resolved for p in summary["patches"])
    assert sum(1 for d in resolved.values() if d.get("name", "").startswith("gcc")) >= 1  # the build root
    assert predicate["buildDefinition"]["internalParameters"]["buildRoot"] == summary["build-root"]
    vex = json.loads(
        (home / "repository" / "vex" / "zlib_1.2.13.dfsg-1+bastion1_amd64.openvex.json").read_text()
    )
    [fixed] = vex["statements"]
    assert fixed["vulnerability"]["name"] == "CVE-2099-0001" and fixed["status"] == "fixed"
    assert "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1%2Bbastion1?arch=amd64" in [
        p["@id"] for p in fixed["products"]
    ]
