"""An image a build reuses from the store has every attestation
its recipe calls for, signed by the key that build was asked to use.

The recipe-cache record is written only after the attestations are attached, and keeps the compliance
predicate assembly made, so a rebuild that reuses the image (another ``--key``, an attestation gone)
signs and attaches it again; an interrupted build (here: a wrong password once the image is written)
leaves no record, so the next build completes the image instead of reusing it as it is.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.conftest import CliResult, catalog_copy, home_sharing_cache, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

PLATFORM = "linux/amd64"
IMAGE = "bastion/static:12"
COMPLIANCE = "https://bastion.invalid/attestations/compliance/v1"
PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
# The whole attestation set a signed build of `static` (which claims the default profile and declares
# tests: their report, issue 18 item 1) is responsible for without a vulnerability database.
POLICY = "required: [spdx, cyclonedx, provenance, compliance, tests]\n"


def _build(definition: Path, home: Path, *extra: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(
        "build", str(definition), "--locked", "--platform", PLATFORM, "--format", "json", *extra,
        home=home, env=env,
    )  # fmt: skip


def _cached(result: CliResult) -> bool:
    assert result.code == 0, result.stderr
    (variant,) = json.loads(result.stdout)
    return bool(variant["platforms"][PLATFORM]["cached"])


def _verify(tmp_path: Path, home: Path, *key: str) -> CliResult:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return run_cli("verify", IMAGE, *key, "--policy", str(policy), "--platform", PLATFORM, home=home)


def _keygen(prefix: Path, home: Path, password: str) -> None:
    made = run_cli(
        "keygen", "--output-key-prefix", str(prefix), home=home, env={"BASTION_PASSWORD": password}
    )
    assert made.code == 0, made.stderr


def test_rebuild_with_another_key_signs_every_attestation_with_it(tmp_path: Path, cached_home: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    assert not _cached(_build(definition, home))  # signed with the local key (A)
    other = tmp_path / "other"
    _keygen(other, home, "b-password")

    started = time.monotonic()
    rebuilt = _build(
        definition, home, "--key", str(other.with_suffix(".key")), env={"BASTION_PASSWORD": "b-password"}
    )
    assert _cached(rebuilt)  # the image is reused, not assembled again ...
    assert time.monotonic() - started < 300
    verified = _verify(tmp_path, home, "--key", str(other.with_suffix(".pub")))
    assert verified.code == 0, verified.stderr + verified.stdout  # ... and compliance is signed by B too
    assert f"{PLATFORM} compliance: verified" in verified.stdout
    assert f"{PLATFORM} tests: verified" in verified.stdout  # the report the record kept
    # What key A signed stays attached and valid.
    assert _verify(tmp_path, home, "--key", str(home / "keys/bastion.pub")).code == 0


def test_a_build_stopped_after_writing_the_image_is_completed_by_the_next(
    tmp_path: Path, cached_home: Path
) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    key = tmp_path / "release"
    _keygen(key, home, "right")
    signing = ("--key", str(key.with_suffix(".key")))

    # The key is decrypted only when the first attestation is signed, after the image was written.
    failed = _build(definition, home, *signing, env={"BASTION_PASSWORD": "wrong"})
    assert failed.code == 2, failed.stderr
    assert "wrong password" in failed.stderr and "Traceback" not in failed.stderr
    assert any((home / "store/blobs/sha256").iterdir())  # the image's blobs are there ...
    assert not list((home / "build-cache").glob("*.json"))  # ... but nothing says it is complete

    assert not _cached(_build(definition, home, *signing, env={"BASTION_PASSWORD": "right"}))
    verified = _verify(tmp_path, home, "--key", str(key.with_suffix(".pub")))
    assert verified.code == 0, verified.stderr + verified.stdout
    assert _cached(_build(definition, home, *signing, env={"BASTION_PASSWORD": "right"}))


def test_a_reused_image_missing_an_attestation_gets_it_again(tmp_path: Path, cached_home: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    assert not _cached(_build(definition, home))
    # As if the build had been killed between the image and its compliance attestation.
    index_path = home / "store/index.json"
    index = json.loads(index_path.read_text())
    kept = [m for m in index["manifests"] if m.get("annotations", {}).get(PREDICATE_TYPE) != COMPLIANCE]
    assert len(kept) == len(index["manifests"]) - 1
    index_path.write_text(json.dumps({**index, "manifests": kept}))
    missing = _verify(tmp_path, home)
    assert missing.code == 1 and "compliance" in missing.stderr, missing.stderr

    assert _cached(_build(definition, home))
    verified = _verify(tmp_path, home)
    assert verified.code == 0, verified.stderr + verified.stdout


def test_an_image_built_unsigned_is_completed_by_a_signed_build(tmp_path: Path, cached_home: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    assert not _cached(_build(definition, home, "--no-attest"))
    # That record does not know the compliance predicate: the image is assembled again to make it.
    assert not _cached(_build(definition, home))
    verified = _verify(tmp_path, home)
    assert verified.code == 0, verified.stderr + verified.stdout
    assert _cached(_build(definition, home))
