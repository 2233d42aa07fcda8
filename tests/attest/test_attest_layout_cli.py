"""``attest list|get`` and ``verify`` on an ``oci-dir://`` layout written by another tool: no
``dev.bastion.subject`` bookkeeping, so referrers are found by reading the manifests ``index.json``
lists (OCI 1.1: an artifact names its image in ``subject``). No network, no package mirror."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bastion.attest import (
    BUNDLE_MEDIA_TYPE,
    Subject,
    bundle_manifest,
    ephemeral_signer,
    make_statement,
    public_key_pem,
)
from bastion.attest import sign_statement as sign
from bastion.oci import MEDIA_TYPE_EMPTY, MEDIA_TYPE_MANIFEST, Store, parse_index
from tests.conftest import run_cli
from tests.registry.conftest import make_image

VEX = "https://openvex.dev/ns/v0.2.0"


def _layout(
    tmp_path: Path, alter: Callable[[bytes], bytes] = lambda b: b
) -> tuple[str, Path, dict[str, str]]:
    """A two-platform layout tagged ``img:1`` with a signed VEX bundle (passed through ``alter``)
    attached to the amd64 image the way oras or cosign would leave it in a layout: an untagged
    index.json entry with ``artifactType``."""
    store = Store(tmp_path / "layout")
    index = make_image(store, layer_sizes=(500,), seed="layout")
    store.tag("img:1", index)
    manifests = parse_index(store.read_blob(index.digest)).manifests
    by_arch = {d.platform.architecture: d for d in manifests if d.platform is not None}
    signer = ephemeral_signer()
    pub = tmp_path / "key.pub"
    pub.write_bytes(public_key_pem(signer.public_key))
    amd64 = by_arch["amd64"]
    statement = make_statement([Subject.for_digest("img", amd64.digest)], VEX, {"statements": []})
    bundle = alter(sign(statement, signer))
    store.put_blob(b"{}", MEDIA_TYPE_EMPTY)
    store.put_blob(bundle, BUNDLE_MEDIA_TYPE)
    manifest = store.put_blob(
        bundle_manifest(bundle, subject=amd64, predicate_type=VEX, created="2030-01-01T00:00:00Z"),
        MEDIA_TYPE_MANIFEST,
    )
    doc = json.loads((store.root / "index.json").read_bytes())
    entry = {**manifest.to_json(), "mediaType": MEDIA_TYPE_MANIFEST, "artifactType": BUNDLE_MEDIA_TYPE}
    doc["manifests"].append(entry)
    (store.root / "index.json").write_text(json.dumps(doc))
    return f"oci-dir://{store.root}:img:1", pub, {arch: d.digest for arch, d in by_arch.items()}


def test_layout_referrers_found_by_subject(tmp_path: Path) -> None:
    ref, pub, digests = _layout(tmp_path)
    home = tmp_path / "home"
    listed = run_cli("attest", "list", ref, "--format", "json", home=home)
    assert listed.code == 0, listed.stderr
    [found] = json.loads(listed.stdout)["attestations"]
    assert (found["subject"], found["predicateType"], found["source"]) == (digests["amd64"], VEX, "layout")

    got = run_cli(
        "attest", "get", ref, "--type", "vex", "--platform", "linux/amd64", "--key", str(pub), home=home
    )
    assert got.code == 0, got.stderr
    assert json.loads(got.stdout) == {"statements": []}

    only_amd64 = ("--type", "vex", "--platform", "linux/amd64")
    assert run_cli("verify", ref, "--key", str(pub), *only_amd64, home=home).code == 0
    everywhere = run_cli("verify", ref, "--key", str(pub), "--type", "vex", home=home)
    assert everywhere.code == 1
    assert "linux/arm64 vex: FAILED (0 found)" in everywhere.stdout


def test_sources_without_attestations_are_refused(tmp_path: Path) -> None:
    result = run_cli("attest", "list", f"fs://{tmp_path}", home=tmp_path / "home")
    assert result.code == 2 and "carry no attestations" in result.stderr
    unknown = run_cli("attest", "get", "nothing/here:1", "--type", "nonsense", home=tmp_path / "home")
    assert unknown.code == 2 and "unknown predicate type" in unknown.stderr


def _noisy_payload(bundle: bytes) -> bytes:
    """The same bundle with characters outside base64 in its DSSE payload: a lenient decoder
    (Python's b64decode without validate) skips them and reads the signed statement unchanged."""
    doc = json.loads(bundle)
    payload = doc["dsseEnvelope"]["payload"]
    doc["dsseEnvelope"]["payload"] = payload[:8] + "!*\n" + payload[8:]
    return json.dumps(doc).encode()


def test_a_payload_that_is_not_base64_is_refused_when_read_unverified(tmp_path: Path) -> None:
    """One strict DSSE decoder (protocol.md) for reading and verifying: `attest get` without
    --verify does not show what verification would refuse to decode."""
    ref, pub, _ = _layout(tmp_path, _noisy_payload)
    home = tmp_path / "home"
    only_amd64 = ("--type", "vex", "--platform", "linux/amd64")
    got = run_cli("attest", "get", ref, *only_amd64, home=home)
    assert got.code == 2 and got.seconds < 30, (got.code, got.stdout, got.stderr)
    assert "payload is not base64" in got.stderr and got.stdout == ""
    verified = run_cli("attest", "get", ref, *only_amd64, "--key", str(pub), home=home)
    assert verified.code == 1 and "payload is not base64" in verified.stderr
