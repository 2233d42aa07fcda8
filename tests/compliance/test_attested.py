"""Through the ``bastion compliance`` command: on a published image, the waivers of
its verified compliance attestation are shown as waived, with their reason and author and where they
came from; an unverified attestation's waivers are not applied, and the command says so.

The image is written into the store the way a build leaves it (its layer, the compliance label, the
predicate ``evaluate_claims`` makes, signed and attached as a Sigstore bundle), without the mirror."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from bastion.attest import (
    KeySigner,
    Subject,
    attach_bundle,
    ephemeral_signer,
    make_statement,
    public_key_pem,
    sign_statement,
)
from bastion.compliance import COMPLIANCE_LABEL, COMPLIANCE_PREDICATE_TYPE, evaluate_claims
from bastion.image import FileKind, ImageTarget
from bastion.oci import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    Platform,
    Store,
    image_manifest,
)
from tests.compliance.crafted import clean_image
from tests.compliance.oscap import validate
from tests.conftest import run_cli

REFERENCE = "test/waived:1"
REASON = "an interpreter image: python3 listens on nothing, so a health check has nothing to probe"
AUTHORITY = "image definition (compliance.waivers)"
BOUND = 60.0


@dataclass(frozen=True)
class W:
    rule: str
    reason: str
    profile: str | None = None


def _layer(target: ImageTarget) -> bytes:
    """The tree as one layer, owners and modes as the target records them (as a build writes them)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(target.files):
            info = target.files[path]
            if path == "/":
                continue
            member = tarfile.TarInfo(path.lstrip("/"))
            member.mode, member.uid, member.gid = info.mode, info.uid, info.gid
            if info.kind is FileKind.DIRECTORY:
                member.type = tarfile.DIRTYPE
                tar.addfile(member)
            elif info.kind is FileKind.SYMLINK:
                member.type, member.linkname = tarfile.SYMTYPE, info.link_target or ""
                tar.addfile(member)
            else:
                data = (target.root / path.lstrip("/")).read_bytes()
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return raw.getvalue()


def _publish(tmp_path: Path, home: Path, signer: KeySigner, predicate: dict[str, Any] | None = None) -> str:
    """A runtime image without a health check, stored as REFERENCE with its signed compliance
    attestation (image_healthcheck waived); returns the manifest digest."""
    image = clean_image(tmp_path / "rootfs")
    image.image_config.pop("Healthcheck")
    with image.target() as target:
        claims = evaluate_claims(
            target, ["default"], [W("image_healthcheck", REASON)], time="2025-01-02T03:04:05Z"
        )
        tar = _layer(target)
    assert claims.passed and [len(r.waived) for r in claims.results] == [1]
    store = Store(home / "store")
    layer = store.put_blob(gzip.compress(tar, mtime=0), MEDIA_TYPE_LAYER_GZIP)
    config = {
        **image.config,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
    }
    config["config"]["Labels"][COMPLIANCE_LABEL] = claims.label
    config_desc = store.put_blob(json.dumps(config).encode(), MEDIA_TYPE_CONFIG)
    manifest = store.put_blob(json.dumps(image_manifest(config_desc, [layer])).encode(), MEDIA_TYPE_MANIFEST)
    platform_desc = Descriptor(
        manifest.media_type, manifest.digest, manifest.size, platform=Platform("linux", "amd64")
    )
    store.tag(REFERENCE, platform_desc)
    statement = make_statement(
        [Subject.for_digest("test/waived", manifest.digest)],
        COMPLIANCE_PREDICATE_TYPE,
        predicate or claims.predicate,
    )
    attach_bundle(
        store,
        platform_desc,
        sign_statement(statement, signer),
        predicate_type=COMPLIANCE_PREDICATE_TYPE,
        created="2025-01-02T03:04:05Z",
    )
    return manifest.digest


def _json(home: Path, *extra: str) -> tuple[dict[str, dict[str, object]], dict[str, object], str]:
    started = time.monotonic()
    result = run_cli("compliance", REFERENCE, "--format", "json", *extra, home=home)
    assert time.monotonic() - started < BOUND
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    return {r["name"]: r for r in document["rules"]}, document, result.stderr


def test_the_signed_attestations_waivers_are_shown_as_waived(tmp_path: Path) -> None:
    home = tmp_path / "home"
    signer = ephemeral_signer()
    (home / "keys").mkdir(parents=True)
    (home / "keys" / "bastion.pub").write_bytes(public_key_pem(signer.public_key))  # the local build key
    _publish(tmp_path, home, signer)

    rules, document, stderr = _json(home)
    healthcheck = rules["image_healthcheck"]
    assert healthcheck["result"] == "notselected", healthcheck
    assert healthcheck["override"]["old_result"] == "fail"
    assert healthcheck["override"]["remark"] == REASON and healthcheck["override"]["authority"] == AUTHORITY
    assert document["summary"]["passed"] is True and document["summary"]["waived"] == 1
    source = document["waiver_source"]
    assert isinstance(source, str) and source.startswith(
        "waivers from the signed compliance attestation sha256:"
    )
    assert source in stderr

    table = run_cli("compliance", REFERENCE, "--exit-code", home=home)
    assert table.code == 0, table.stdout + table.stderr
    assert f"image_healthcheck: fail waived by {AUTHORITY}: {REASON}" in table.stdout
    assert "waivers from the signed compliance attestation sha256:" in table.stdout

    out = tmp_path / "report.xml"
    assert run_cli("compliance", REFERENCE, "--format", "xccdf", "-o", str(out), home=home).code == 0
    assert validate(out) == []
    ns = {"x": "http://checklists.nist.gov/xccdf/1.2"}
    (remark,) = etree.parse(str(out)).xpath("//x:select[@selected='false']/x:remark/text()", namespaces=ns)
    assert remark == f"waived by {AUTHORITY}: {REASON}"


def test_an_unverified_attestations_waivers_are_not_applied(tmp_path: Path) -> None:
    home = tmp_path / "home"
    signer = ephemeral_signer()
    digest = _publish(tmp_path, home, signer)

    # No key at all: nothing can be verified, and the command says so.
    rules, document, stderr = _json(home)
    assert rules["image_healthcheck"]["result"] == "fail" and rules["image_healthcheck"]["override"] is None
    assert document["waiver_source"] is None
    assert f"compliance attestation(s) of {digest} not verified" in stderr and "not applied" in stderr
    failed = run_cli("compliance", REFERENCE, "--exit-code", home=home)
    assert failed.code == 1 and "image_healthcheck" in failed.stderr

    # A key that did not sign it: not verified, not applied.
    other = tmp_path / "other.pub"
    other.write_bytes(public_key_pem(ephemeral_signer().public_key))
    rules, document, stderr = _json(home, "--key", str(other))
    assert rules["image_healthcheck"]["result"] == "fail" and document["waiver_source"] is None
    assert "verifies" in stderr and "not applied" in stderr

    # The signer's key given with --key: verified, applied.
    signed_by = tmp_path / "signer.pub"
    signed_by.write_bytes(public_key_pem(signer.public_key))
    rules, document, stderr = _json(home, "--key", str(other), "--key", str(signed_by))
    assert rules["image_healthcheck"]["result"] == "notselected"
    assert "signed compliance attestation" in str(document["waiver_source"])

    missing = run_cli("compliance", REFERENCE, "--key", str(tmp_path / "nope.pub"), home=home)
    assert missing.code == 2 and "nope.pub" in missing.stderr


def test_a_malformed_signed_predicate_is_refused_naming_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    signer = ephemeral_signer()
    (home / "keys").mkdir(parents=True)
    (home / "keys" / "bastion.pub").write_bytes(public_key_pem(signer.public_key))
    waivers = [{"rule": "image_healthcheck", "reason": "x" * 100_000, "authority": "a"}]
    hostile = {"profiles": [{"name": "bastion-container-baseline", "version": "1.0.0", "waivers": waivers}]}
    _publish(tmp_path, home, signer, hostile)
    started = time.monotonic()
    result = run_cli("compliance", REFERENCE, home=home)
    assert time.monotonic() - started < BOUND
    assert result.code == 2, result.stderr
    assert "compliance attestation sha256:" in result.stderr
    assert "predicate.profiles.0.waivers.0.reason" in result.stderr
