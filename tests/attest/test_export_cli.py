"""``bastion export`` carries what is attached to an image: a copy exported to
``oci-dir://`` verifies offline exactly as the original in the store does, with cosign v3 bundles
(referrers) and cosign's legacy ``sha256-<hex>.sig`` tag; ``--no-attestations`` leaves them out; a
tampered attestation in the copy fails verification; a docker-archive, which cannot hold them, says
so. No network, no package mirror: the image and its signed attestations are made here."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.attest import (
    DEFAULT_REQUIRED,
    PROVENANCE_PREDICATE_TYPE,
    Subject,
    attach_bundle,
    ephemeral_signer,
    make_statement,
    public_key_pem,
    sign_statement,
)
from bastion.oci import (
    ANNOTATION_SUBJECT,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    Store,
    canonical_json,
    parse_index,
    parse_manifest,
)
from tests.conftest import REPO_ROOT, CliResult, run_cli
from tests.registry.conftest import make_image

IMAGE = "bastion/tiny:1"
CREATED = "2030-01-01T00:00:00Z"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


@dataclass(frozen=True)
class Signed:
    home: Path
    pub: Path
    index: Descriptor
    manifests: dict[str, str]  # arch -> platform manifest digest
    attached: int


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    """``bastion/tiny:1`` (amd64, arm64) in a fresh store, each platform with signed SPDX, CycloneDX and
    provenance bundles attached as ``bastion build`` attaches them, and the amd64 image with a cosign
    legacy ``.sig`` tag (SIGNATURE_SPEC.md: a simple-signing layer, its signature in an annotation)."""
    home = tmp_path / "home"
    store = Store(home / "store")
    index = store.tag(IMAGE, make_image(store, layer_sizes=(500,), seed="export"))
    manifests = {
        d.platform.architecture: d
        for d in parse_index(store.read_blob(index.digest)).manifests
        if d.platform is not None
    }
    signer = ephemeral_signer()
    pub = tmp_path / "key.pub"
    pub.write_bytes(public_key_pem(signer.public_key))
    for desc in manifests.values():
        for kind in DEFAULT_REQUIRED:
            statement = make_statement(
                [Subject.for_digest("bastion/tiny", desc.digest)], kind, {"made": "here"}
            )
            attach_bundle(
                store, desc, sign_statement(statement, signer), predicate_type=kind, created=CREATED
            )
    amd64 = manifests["amd64"].digest
    payload = canonical_json({"critical": {"identity": {"docker-reference": "bastion/tiny"},
                                           "image": {"docker-manifest-digest": amd64},
                                           "type": "cosign container image signature"}, "optional": None})  # fmt: skip
    layer = store.put_blob(payload, SIMPLE_SIGNING).with_annotations(
        {"dev.cosignproject.cosign/signature": base64.b64encode(signer.sign(payload)).decode()}
    )
    config = store.put_blob(canonical_json({"architecture": "", "os": "", "config": {},
                                            "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}),
                            MEDIA_TYPE_CONFIG)  # fmt: skip
    sig = store.put_blob(canonical_json({"schemaVersion": 2, "mediaType": MEDIA_TYPE_MANIFEST,
                                         "config": config.to_json(), "layers": [layer.to_json()]}),
                         MEDIA_TYPE_MANIFEST)  # fmt: skip
    store.tag("bastion/tiny:" + amd64.replace(":", "-") + ".sig", sig)
    digests = {arch: d.digest for arch, d in manifests.items()}
    return Signed(home, pub, index, digests, attached=len(manifests) * len(DEFAULT_REQUIRED) + 1)


def _timed(*args: str, home: Path) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home)
    assert time.monotonic() - started < 120, args
    assert result.code in (0, 1, 2), result.stderr  # never an internal error
    return result


def _export(signed: Signed, dest: Path, *extra: str) -> None:
    exported = _timed("export", IMAGE, f"oci-dir://{dest}", *extra, home=signed.home)
    assert exported.code == 0, exported.stderr
    assert exported.stdout.strip() == signed.index.digest


def test_exported_layout_verifies_offline_like_the_store(signed: Signed, tmp_path: Path) -> None:
    key = ("--key", str(signed.pub))
    assert _timed("verify", IMAGE, *key, home=signed.home).code == 0  # the original verifies
    dest = tmp_path / "copy"
    _export(signed, dest)
    copy = f"oci-dir://{dest}"
    verified = _timed("verify", copy, *key, home=signed.home)
    assert verified.code == 0, verified.stdout + verified.stderr
    legacy = _timed(
        "verify", copy, *key, "--type", "signature", "--platform", "linux/amd64", home=signed.home
    )
    assert legacy.code == 0, legacy.stdout + legacy.stderr
    listed = _timed("attest", "list", copy, "--format", "json", home=signed.home)
    assert listed.code == 0, listed.stderr
    assert len(json.loads(listed.stdout)["attestations"]) == signed.attached
    got = _timed("attest", "get", copy, "--type", "provenance", "--platform", "linux/arm64", *key,
                 home=signed.home)  # fmt: skip
    assert got.code == 0 and json.loads(got.stdout) == {"made": "here"}, got.stderr
    # Named by its tag in the layout, too.
    assert _timed("verify", f"{copy}:1", *key, home=signed.home).code == 0


def test_no_attestations_leaves_them_out(signed: Signed, tmp_path: Path) -> None:
    dest = tmp_path / "bare"
    _export(signed, dest, "--no-attestations")
    refused = _timed("verify", f"oci-dir://{dest}", "--key", str(signed.pub), home=signed.home)
    assert refused.code == 1 and "FAILED (0 found)" in refused.stdout


def _bundle_entry(layout: Path, subject: str, predicate_type: str) -> tuple[dict[str, object], Path]:
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        annotations = entry.get("annotations", {})
        if (
            annotations.get(ANNOTATION_SUBJECT) == subject
            and annotations.get("dev.sigstore.bundle.predicateType") == predicate_type
        ):
            return entry, layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")
    raise AssertionError(f"no {predicate_type} attached to {subject} in {layout}")


def test_tampered_exported_attestation_fails(signed: Signed, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    _export(signed, dest)
    amd64 = signed.manifests["amd64"]
    entry, manifest_path = _bundle_entry(dest, amd64, PROVENANCE_PREDICATE_TYPE)
    manifest = json.loads(manifest_path.read_bytes())
    bundle_digest = manifest["layers"][0]["digest"]
    bundle_path = dest / "blobs" / "sha256" / bundle_digest.removeprefix("sha256:")
    original = bundle_path.read_bytes()
    # One byte of the signed statement flipped, and the layout made consistent again (new digests in the
    # artifact manifest and index.json), as whoever can rewrite the copy can: only the signature can tell.
    bundle = json.loads(original)
    statement = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    flipped = statement.replace(b'"here"', b'"hers"')
    assert flipped != statement
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(flipped).decode()
    data = json.dumps(bundle).encode()
    new_layer = "sha256:" + hashlib.sha256(data).hexdigest()
    (dest / "blobs" / "sha256" / new_layer.removeprefix("sha256:")).write_bytes(data)
    manifest["layers"][0] |= {"digest": new_layer, "size": len(data)}
    manifest_data = json.dumps(manifest).encode()
    new_manifest = "sha256:" + hashlib.sha256(manifest_data).hexdigest()
    (dest / "blobs" / "sha256" / new_manifest.removeprefix("sha256:")).write_bytes(manifest_data)
    index_path = dest / "index.json"
    index = json.loads(index_path.read_text())
    for item in index["manifests"]:
        if item["digest"] == entry["digest"]:
            item |= {"digest": new_manifest, "size": len(manifest_data)}
    index_path.write_text(json.dumps(index))
    failed = _timed("verify", f"oci-dir://{dest}", "--key", str(signed.pub), home=signed.home)
    assert failed.code == 1, failed.stdout + failed.stderr
    assert "linux/amd64 provenance: FAILED" in failed.stdout
    # A byte flipped in place (the blob no longer matches its digest) is refused naming the blob.
    bundle_path.write_bytes(original)
    for item in index["manifests"]:
        if item["digest"] == new_manifest:
            item |= {"digest": entry["digest"], "size": entry["size"]}
    index_path.write_text(json.dumps(index))
    assert _timed("verify", f"oci-dir://{dest}", "--key", str(signed.pub), home=signed.home).code == 0
    bundle_path.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    corrupted = _timed("verify", f"oci-dir://{dest}", "--key", str(signed.pub), home=signed.home)
    assert corrupted.code in (1, 2) and bundle_digest in corrupted.stdout + corrupted.stderr


def test_docker_archive_says_attestations_are_left_out(signed: Signed, tmp_path: Path) -> None:
    archive = tmp_path / "tiny.tar"
    result = _timed("export", IMAGE, f"docker-archive://{archive}", "--platform", "linux/amd64",
                    home=signed.home)  # fmt: skip
    assert result.code == 0, result.stderr
    assert "cannot carry signatures or attestations" in result.stderr
    assert f"{signed.attached} attached to {IMAGE} were left out" in result.stderr
    assert archive.is_file()


def test_exported_manifest_lists_only_its_own_attestations(signed: Signed, tmp_path: Path) -> None:
    """``--platform`` exports one manifest: its attestations come along, the other platform's do not."""
    dest = tmp_path / "amd64"
    exported = _timed("export", IMAGE, f"oci-dir://{dest}:amd64", "--platform", "linux/amd64",
                      home=signed.home)  # fmt: skip
    assert exported.code == 0, exported.stderr
    layout = Store(dest, create=False)
    subjects = {d.annotations.get(ANNOTATION_SUBJECT) for d in layout.index().manifests}
    assert subjects == {None, signed.manifests["amd64"]}
    for entry in layout.index().manifests:
        if entry.annotations.get(ANNOTATION_SUBJECT):
            manifest = parse_manifest(layout.read_blob(entry.digest))
            assert manifest.subject is not None and manifest.subject.digest == signed.manifests["amd64"]
    verified = _timed("verify", f"oci-dir://{dest}:amd64", "--key", str(signed.pub), home=signed.home)
    assert verified.code == 0, verified.stdout + verified.stderr


@pytest.mark.mirror
@pytest.mark.slow
def test_built_image_exported_verifies(cached_home: Path, tmp_path: Path) -> None:
    """What a user does: build, export, verify the copy with the build's key; scanners still open it."""
    built = run_cli("build", "catalog/python/python.yaml", "--locked", "--platform", "linux/amd64",
                    "--skip-tests", "--variant", "runtime", home=cached_home, cwd=REPO_ROOT)  # fmt: skip
    assert built.code == 0, built.stderr
    dest = tmp_path / "python"
    exported = _timed("export", "bastion/python:3.11", f"oci-dir://{dest}", home=cached_home)
    assert exported.code == 0, exported.stderr
    assert exported.stdout.strip() in built.stdout  # the index digest the build printed
    copy = f"oci-dir://{dest}"
    key = ("--key", str(cached_home / "keys" / "bastion.pub"))
    verified = _timed("verify", copy, *key, home=tmp_path / "elsewhere")
    assert verified.code == 0, verified.stdout + verified.stderr
    # The layout holds the image and what is attached to it: one image, so no tag is needed.
    sbom = _timed("sbom", copy, "--format", "table", home=tmp_path / "elsewhere")
    assert sbom.code == 0 and "libc6" in sbom.stdout, sbom.stderr
