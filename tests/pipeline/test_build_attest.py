"""A build signs SBOM, provenance, compliance and test-report attestations and attaches them to each
platform image; with a vulnerability database present it attaches the CVE scan too. The test report
(issue 18 item 1: a proof producer of its own) is attached only when tests ran."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from tests.conftest import catalog_copy, home_sharing_cache, run_cli
from tests.vuln.helpers import KEV, PYPI, TRACKER

from bastion.attest import AttachedBundle, Verifier, stored_bundles, verify_bundle
from bastion.errors import VerificationFailed
from bastion.oci import Store

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

SPDX, CYCLONEDX, SLSA = (
    "https://spdx.dev/Document",
    "https://cyclonedx.org/bom/v1.6",
    "https://slsa.dev/provenance/v1",
)
COMPLIANCE = "https://bastion.invalid/attestations/compliance/v1"
CVE_SCAN = "https://cosign.sigstore.dev/attestation/vuln/v1"
OPENVEX = "https://openvex.dev/ns/v0.2.0"
TESTS = "https://bastion.invalid/attestations/test-report/v1"


def test_build_attaches_signed_sbom_and_provenance(tmp_path: Path, cached_home: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    result = run_cli("build", str(definition), "--locked", "--format", "json", home=home)
    assert result.code == 0, result.stderr
    assert "created the signing key" in result.stderr
    (variant,) = json.loads(result.stdout)
    store = Store(home / "store")
    verifier = Verifier.from_files([home / "keys/bastion.pub"])
    lock = json.loads(definition.with_suffix(".lock.json").read_text())
    for platform, built in variant["platforms"].items():
        digest = built["digest"]
        bundles = {b.predicate_type: b for b in stored_bundles(store, digest)}
        # static claims the default profile, and declares tests (issue 18 item 1: their report too)
        assert set(bundles) == {SPDX, CYCLONEDX, SLSA, COMPLIANCE, TESTS}
        for bundle in bundles.values():
            statement = verify_bundle(bundle.bundle, verifier)
            assert [s.digest["sha256"] for s in statement.subject] == [digest.removeprefix("sha256:")]
        provenance = verify_bundle(bundles[SLSA].bundle, verifier).predicate
        assert provenance is not None
        external = provenance["buildDefinition"]["externalParameters"]
        assert external["definition"]["sha256"] == hashlib.sha256(definition.read_bytes()).hexdigest()
        assert external["variant"] == "runtime" and external["locked"] is True
        resolved = {d["digest"]["sha256"] for d in provenance["buildDefinition"]["resolvedDependencies"]}
        packages = lock["variants"]["runtime"][platform]["packages"]
        assert {p["sha256"] for p in packages} <= resolved
        assert {s["inrelease-sha256"] for s in lock["suites"]} <= resolved
        spdx = verify_bundle(bundles[SPDX].bundle, verifier).predicate
        assert spdx is not None and spdx["spdxVersion"] == "SPDX-2.3"
        _check_test_report(definition, platform, bundles[TESTS], verifier)
        # A key that did not sign them: refused.
        other = tmp_path / "other"
        if not other.with_suffix(".pub").exists():
            keygen = run_cli(
                "keygen", "--output-key-prefix", str(other), home=home, env={"BASTION_PASSWORD": ""}
            )
            assert keygen.code == 0, keygen.stderr
        with pytest.raises(VerificationFailed):
            verify_bundle(bundles[SLSA].bundle, Verifier.from_files([other.with_suffix(".pub")]))

    # An unchanged rebuild signs nothing again; with a vulnerability database it adds the CVE scan.
    before = len(json.loads((home / "store/index.json").read_text())["manifests"])
    again = run_cli("build", str(definition), "--locked", home=home)
    assert again.code == 0, again.stderr
    assert len(json.loads((home / "store/index.json").read_text())["manifests"]) == before
    assert run_cli("db", "import", str(KEV), str(TRACKER), home=home).code == 0
    # The definition's VEX statements (which keep the lock valid) go into the signed OpenVEX document.
    with definition.open("a") as text:
        text.write(
            "vex:\n  - {vulnerability: CVE-2099-0001, status: not_affected, justification: component_not_present,\n"
            '     author: "Image maintainers <maintainers@example.invalid>"}\n'
        )
    scanned = run_cli("build", str(definition), "--locked", "--format", "json", home=home)
    assert scanned.code == 0, scanned.stderr
    for built in json.loads(scanned.stdout)[0]["platforms"].values():
        bundles = {b.predicate_type: b for b in stored_bundles(store, built["digest"])}
        assert "https://cosign.sigstore.dev/attestation/vuln/v1" in bundles
        vex = verify_bundle(bundles["https://openvex.dev/ns/v0.2.0"].bundle, verifier).predicate
        assert vex is not None
        (person,) = [s for s in vex["statements"] if s["vulnerability"]["name"] == "CVE-2099-0001"]
        assert person["status"] == "not_affected" and "Image maintainers" in person["status_notes"]

    def openvex_authors(digest: str) -> list[str]:
        found = []
        for bundle in stored_bundles(store, digest, "https://openvex.dev/ns/v0.2.0"):
            predicate = verify_bundle(bundle.bundle, verifier).predicate
            assert predicate is not None
            found += [
                s["status_notes"]
                for s in predicate["statements"]
                if s["vulnerability"]["name"] == "CVE-2099-0001"
            ]
        return sorted(found)

    digests = [built["digest"] for built in json.loads(scanned.stdout)[0]["platforms"].values()]
    # Rebuilt unchanged: nothing is signed again. With an edited statement: a new OpenVEX document.
    assert run_cli("build", str(definition), "--locked", home=home).code == 0
    assert [openvex_authors(d) for d in digests] == [
        ["Statement by Image maintainers <maintainers@example.invalid>"]
    ] * len(digests)
    definition.write_text(definition.read_text().replace("Image maintainers", "Security team"))
    assert run_cli("build", str(definition), "--locked", home=home).code == 0
    for digest in digests:
        assert openvex_authors(digest) == [
            "Statement by Image maintainers <maintainers@example.invalid>",
            "Statement by Security team <maintainers@example.invalid>",
        ]

    # Other vulnerability data: the next rebuild signs a CVE scan and an OpenVEX document made from
    # it (the older ones stay, with their own data token); the same data imported again is no change.
    def counts() -> list[tuple[int, int]]:
        return [
            (len(stored_bundles(store, d, CVE_SCAN)), len(stored_bundles(store, d, OPENVEX))) for d in digests
        ]

    assert counts() == [(1, 2)] * len(digests)
    assert run_cli("db", "import", str(KEV), str(TRACKER), home=home).code == 0
    assert run_cli("build", str(definition), "--locked", home=home).code == 0
    assert counts() == [(1, 2)] * len(digests)
    assert run_cli("db", "import", str(PYPI / "pip"), home=home).code == 0
    assert run_cli("build", str(definition), "--locked", home=home).code == 0
    assert counts() == [(2, 3)] * len(digests)
    assert run_cli("build", str(definition), "--locked", home=home).code == 0
    assert counts() == [(2, 3)] * len(digests)


def _check_test_report(definition: Path, platform: str, attached: AttachedBundle, verifier: Verifier) -> None:
    """The signed report lists each of the definition's tests for ``platform``, in order, with its kind
    and result; static's are file and absent tests only, so no sandbox was started."""
    report = verify_bundle(attached.bundle, verifier).predicate
    assert report is not None
    declared = [
        t
        for t in yaml.safe_load(definition.read_text())["tests"]
        if platform in t.get("platforms", [platform])
    ]
    assert [t["name"] for t in report["tests"]] == [t["name"] for t in declared]
    assert [t["kind"] for t in report["tests"]] == ["absent" if "absent" in t else "file" for t in declared]
    assert {t["result"] for t in report["tests"]} == {"passed"}
    assert all(t["detail"] == "" and 0 <= t["durationSeconds"] < 60 for t in report["tests"])
    assert report["summary"] == {"total": len(declared), "passed": len(declared), "failed": 0}
    assert report["platform"] == platform and report["sandbox"] is None
    assert attached.manifest.annotations["dev.bastion.tests"] == report["testsDigest"]
    assert report["testsDigest"].startswith("sha256:")


def test_verify_with_a_policy(tmp_path: Path, cached_home: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    assert run_cli("build", str(definition), "--locked", home=home).code == 0
    (tmp_path / "keys").mkdir()
    shutil.copyfile(home / "keys/bastion.pub", tmp_path / "keys/release.pub")
    policy = tmp_path / "policy.yaml"
    base = "required: [spdx, cyclonedx]\nkeys: [keys/release.pub]\nconditions:\n"
    holds = (
        "  - {predicate: provenance, path: runDetails.builder.id, equals: 'https://bastion.invalid/slsa/builders/local'}\n"
        "  - {predicate: provenance, path: buildDefinition.externalParameters.locked, equals: true}\n"
    )
    policy.write_text(base + holds)
    ok = run_cli("verify", "bastion/static:12", "--policy", str(policy), home=home)
    assert ok.code == 0, ok.stderr + ok.stdout
    assert ok.stdout.count("policy provenance") == 4  # two conditions on two platforms
    # A condition that does not hold: exit 1, saying which and why.
    policy.write_text(
        base
        + holds
        + "  - {predicate: provenance, path: buildDefinition.externalParameters.variant, equals: dev}\n"
    )
    broken = run_cli("verify", "bastion/static:12", "--policy", str(policy), home=home)
    assert broken.code == 1, broken.stderr
    assert "variant is 'runtime'" in broken.stderr
    # A key that is not the policy's: nothing verifies.
    assert run_cli("keygen", "--output-key-prefix", str(tmp_path / "keys/release"), "--force", home=home,
                   env={"BASTION_PASSWORD": ""}).code == 0  # fmt: skip
    policy.write_text(base + holds)
    foreign = run_cli("verify", "bastion/static:12", "--policy", str(policy), home=home)
    assert foreign.code == 1, foreign.stderr


def test_a_policy_requiring_the_test_report(tmp_path: Path, cached_home: Path) -> None:
    """``verify --policy`` can require the test report: a build with ``--skip-tests`` attaches none,
    so its image fails such a policy, naming the report; one whose tests ran passes it."""
    definition = catalog_copy("static", tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "required: [spdx, cyclonedx, provenance, tests]\n"
        "conditions:\n  - {predicate: tests, path: summary.failed, equals: 0}\n"
    )
    only = ("--locked", "--platform", "linux/amd64", "--format", "json")
    for name in ("skipped", "tested"):
        (tmp_path / name).mkdir()
    skipped_home = home_sharing_cache(tmp_path / "skipped", cached_home)
    skipped = run_cli("build", str(definition), *only, "--skip-tests", home=skipped_home)
    assert skipped.code == 0, skipped.stderr
    digest = json.loads(skipped.stdout)[0]["platforms"]["linux/amd64"]["digest"]
    attached = {b.predicate_type for b in stored_bundles(Store(skipped_home / "store"), digest)}
    assert attached == {SPDX, CYCLONEDX, SLSA, COMPLIANCE}  # no test report: no test ran
    refused = run_cli("verify", "bastion/static:12", "--policy", str(policy), home=skipped_home)
    assert refused.code == 1, refused.stderr + refused.stdout
    assert "tests" in refused.stderr + refused.stdout

    tested_home = home_sharing_cache(tmp_path / "tested", cached_home)
    assert run_cli("build", str(definition), *only, home=tested_home).code == 0
    ok = run_cli("verify", "bastion/static:12", "--policy", str(policy), home=tested_home)
    assert ok.code == 0, ok.stderr + ok.stdout
    assert "linux/amd64 policy tests: summary.failed == 0: holds" in ok.stdout
