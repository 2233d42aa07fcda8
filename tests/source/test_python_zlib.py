"""The catalog's source-build example end to end (issue 21, "shown when done"): zlib rebuilt from Debian's
source with Bastion's patch (which declares it fixes the test id CVE-2099-0001), the python image built on
it from Bastion's repository (``catalog/python-zlib``, ``contents.bastion-repository``), and the scan:
``bastion cves`` lists CVE-2099-0001 as fixed by Bastion's build, with the VEX statement, while on the
python image built from Debian's zlib the CVE is open. The image's signed provenance names the zlib1g
.deb and the signed provenance of its build. Vulnerability data: ``data/CVE-2099-0001.tracker.json``, a
security-tracker record with zlib open in bookworm. Uses the mirror; the build root is cached."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, home_sharing_cache, run_cli

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.slow,
    pytest.mark.buildroot,
    # A source build (the zlib build root cached by test_zlib_build, else made: docs/benchmarks.md),
    # the image on it and python's runtime image: more than the suite's 600 s default on a loaded machine.
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("bwrap") is None, reason="builds run as root in bwrap"
    ),
]

CVE = "CVE-2099-0001"
OURS = "1:1.2.13.dfsg-1+bastion1"
FEED = Path(__file__).parent / "data" / f"{CVE}.tracker.json"


def _cves(image: str, home: Path) -> tuple[dict[str, list[dict[str, object]]], str]:
    result = run_cli("cves", image, "--format", "json", home=home)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_python_on_bastions_zlib_shows_the_cve_fixed(tmp_path: Path, cached_home: Path) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    built = run_cli("source", "build", str(REPO_ROOT / "catalog/packages/zlib/zlib.yaml"), home=home)
    assert built.code == 0, built.stderr
    zlib1g = next(p for p in json.loads(built.stdout)["packages"] if p["name"].startswith("zlib1g_"))

    # The definition is copied so that its lock (naming this BASTION_HOME's repository) is written here.
    definition = tmp_path / "python-zlib" / "python-zlib.yaml"
    definition.parent.mkdir()
    shutil.copyfile(REPO_ROOT / "catalog/python-zlib/python-zlib.yaml", definition)
    image = run_cli("build", str(definition), home=home)
    assert image.code == 0, image.stderr
    lock = json.loads(definition.with_name("python-zlib.lock.json").read_text())
    [locked] = [p for p in lock["variants"]["runtime"]["linux/amd64"]["packages"] if p["name"] == "zlib1g"]
    assert locked["version"] == OURS and locked["sha256"] == zlib1g["sha256"]
    assert locked["repository"] == (home / "repository").resolve().as_uri()

    python = run_cli("build", "catalog/python/python.yaml", "--locked", "--variant", "runtime",
                     "--platform", "linux/amd64", "--skip-tests", home=home, cwd=REPO_ROOT)  # fmt: skip
    assert python.code == 0, python.stderr

    assert run_cli("db", "import", str(FEED), home=home).code == 0
    ours, stderr = _cves("bastion/python-zlib:3.11", home)
    assert "release is unknown" not in stderr  # Bastion's suite names no Debian release of its own
    assert CVE not in {f["id"] for f in ours["findings"]}
    [fixed] = [s for s in ours["suppressed"] if s["id"] == CVE]
    assert "zlib1g" in json.dumps(fixed) and "fixed" in json.dumps(fixed)
    assert f"{CVE} in zlib1g {OURS}: fixed by Bastion's build" in stderr
    vex = home / "repository" / "vex" / "zlib_1.2.13.dfsg-1+bastion1_amd64.openvex.json"
    assert f"VEX {json.loads(vex.read_text())['@id']}" in stderr  # the VEX statement Bastion made

    debian, _ = _cves("bastion/python:3.11", home)  # Debian's zlib: the CVE is open
    assert CVE in {f["id"] for f in debian["findings"]}
    assert CVE not in {s["id"] for s in debian["suppressed"]}

    # The image's provenance names the .deb and the signed provenance of its build.
    provenance = run_cli("attest", "get", "bastion/python-zlib:3.11", "--predicate-type", "provenance",
                         "--verify", "--key", str(home / "keys" / "bastion.pub"), home=home)  # fmt: skip
    assert provenance.code == 0, provenance.stderr
    resolved = json.loads(provenance.stdout)["buildDefinition"]["resolvedDependencies"]
    digests = {d["digest"]["sha256"]: d for d in resolved}
    assert zlib1g["sha256"] in digests
    bundle = home / "repository" / "provenance" / "zlib" / "1.2.13.dfsg-1+bastion1_amd64.sigstore.json"
    [reference] = [d for d in resolved if d.get("uri") == bundle.resolve().as_uri()]
    assert reference["digest"]["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
