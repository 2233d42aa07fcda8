"""Attestations through the real command line and a real registry (Debian's docker-registry, which has
no referrers API, so the fallback tag is what lists them): build → push → list → get --verify → pull →
mirror, and the ways verification must fail (wrong key, an attestation moved to another image, a
tampered blob, nothing attached). cosign's legacy .att/.sig tags are made here by hand from cosign's
specs (SIGNATURE_SPEC.md, ATTESTATION_SPEC.md), signed with `cryptography` directly."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.attest import KeySigner, Subject, bundle_manifest, make_statement, sign_statement
from bastion.oci import (
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    RegistryClient,
    Store,
    canonical_json,
    parse_index,
    push_image,
)
from tests.attest.helpers import hand_pae
from tests.conftest import REPO_ROOT, CliResult, run_cli
from tests.registry.conftest import PASSWORD, USER, RegistryProcess, make_image

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

IMAGE = "bastion/static:12"
PLATFORMS = ("linux/amd64", "linux/arm64")
TYPES = {"spdx": "spdxVersion", "cyclonedx": "bomFormat", "provenance": "buildDefinition"}
VEX = "https://openvex.dev/ns/v0.2.0"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Path:
    """A fresh home (its own signing key, made by the build) sharing the package cache."""
    home = tmp_path_factory.mktemp("attest-home")
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    # A copy of the definition, so that a lock written by the build never lands in the repository.
    definition = home / "static.yaml"
    shutil.copy(REPO_ROOT / "catalog/static/static.yaml", definition)
    result = run_cli("build", str(definition), "--skip-tests", home=home)
    assert result.code == 0, result.stderr
    return home


@pytest.fixture(scope="module")
def pushed(built: Path, registry: RegistryProcess) -> str:
    ref = f"{registry.host}/att/static:12"
    result = run_cli("push", IMAGE, ref, home=built)
    assert result.code == 0, result.stderr
    local = Store(built / "store", create=False).resolve(IMAGE).digest
    assert result.stdout.strip() == f"{registry.host}/att/static@{local}"
    return ref


def _ok(result: CliResult) -> str:
    assert result.code == 0, result.stderr
    return result.stdout


def _listing(ref: str, home: Path, *extra: str, env: dict[str, str] | None = None) -> list[dict[str, str]]:
    out = _ok(run_cli("attest", "list", ref, "--format", "json", *extra, home=home, env=env))
    return list(json.loads(out)["attestations"])


def _key_pair(directory: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = directory / f"{name}.pub"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pub


def test_push_list_get_pull_mirror(
    built: Path, pushed: str, registry: RegistryProcess, basic_registry: RegistryProcess, tmp_path: Path
) -> None:
    pub = str(built / "keys" / "bastion.pub")
    local = Store(built / "store", create=False).resolve(IMAGE).digest

    # skopeo, an independent client, reads the pushed index.
    if shutil.which("skopeo"):
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{pushed}"],
            capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == local

    # Four bundles per platform (SBOMs, provenance, compliance), found through the fallback tag
    # (docker-registry has no referrers API).
    listed = _listing(pushed, built)
    assert sorted(a["platform"] for a in listed) == sorted(["linux/amd64"] * 4 + ["linux/arm64"] * 4)
    assert {a["format"] for a in listed} == {"sigstore-bundle"} and {a["source"] for a in listed} == {
        "referrers"
    }
    hints = {a["keyHint"] for a in listed}
    assert len(hints) == 1 and hints != {""}

    for platform in PLATFORMS:
        for alias, field in TYPES.items():
            args = (
                "attest",
                "get",
                pushed,
                "--type",
                alias,
                "--verify",
                "--key",
                pub,
                "--platform",
                platform,
            )
            predicate = json.loads(_ok(run_cli(*args, home=built)))
            assert field in predicate
    _ok(run_cli("verify", pushed, "--key", pub, home=built))

    # Scanning reads one platform straight from the registry (into a temporary layout).
    empty = tmp_path / "empty-home"
    for ref in (pushed, "registry://" + pushed):
        sbom = _ok(run_cli("sbom", ref, "--format", "spdx-json", "--platform", "linux/arm64", home=empty))
        assert {p["name"] for p in json.loads(sbom)["packages"]} >= {"base-files", "tzdata"}
    assert not list((empty / "work").iterdir())

    # Pull into an empty store: attestations come along and verify from the local store.
    out = _ok(run_cli("pull", pushed, "--tag", "local/static:12", home=empty))
    assert out.split() == ["local/static:12", local]
    assert len(_listing("local/static:12", empty)) == 8
    statement = json.loads(
        _ok(run_cli("attest", "get", "local/static:12", "--type", "slsa", "--key", pub,
                    "--platform", "linux/arm64", "--format", "statement", home=empty))
    )  # fmt: skip
    arm64 = next(a["subject"] for a in listed if a["platform"] == "linux/arm64")
    assert statement["subject"][0]["digest"] == {"sha256": arm64.removeprefix("sha256:")}
    _ok(run_cli("verify", "local/static:12", "--key", pub, home=empty))

    # Mirror to another repository, then to another registry (with basic auth): digests unchanged,
    # attestations verifiable there.
    second = f"{registry.host}/attest-mirror/static:12"
    assert _ok(run_cli("mirror", pushed, second, home=empty)).strip().endswith("@" + local)
    _ok(run_cli("verify", second, "--key", pub, home=empty))
    creds = {"BASTION_REGISTRY_USERNAME": USER, "BASTION_REGISTRY_PASSWORD": PASSWORD}
    third = f"{basic_registry.host}/far/static:12"
    assert _ok(run_cli("mirror", second, third, home=empty, env=creds)).strip().endswith("@" + local)
    report = json.loads(
        _ok(run_cli("verify", third, "--key", pub, "--format", "json", home=empty, env=creds))
    )
    assert report["verified"] and report["digest"] == local and len(report["checks"]) == 6
    assert {a["digest"] for a in _listing(third, empty, env=creds)} == {a["digest"] for a in listed}


def test_wrong_key_fails(built: Path, pushed: str, tmp_path: Path) -> None:
    _, other = _key_pair(tmp_path, "other")
    get = run_cli("attest", "get", pushed, "--type", "spdx", "--verify", "--key", str(other), home=built)
    assert get.code == 1 and "no signature verifies" in get.stderr and get.stdout == ""
    verify = run_cli("verify", pushed, "--key", str(other), home=built)
    assert verify.code == 1 and "FAILED" in verify.stdout
    # Any of N keys: the right one among others verifies.
    both = ("--key", str(other), "--key", str(built / "keys" / "bastion.pub"))
    _ok(run_cli("verify", pushed, *both, home=built))
    # --verify without --key and without a local key: a usage error, not a silent pass.
    empty = run_cli("attest", "get", pushed, "--type", "spdx", "--verify", home=tmp_path / "no-key")
    assert empty.code == 2 and "needs a public key" in empty.stderr


@pytest.fixture(scope="module")
def other_image(registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A second image (two platforms, no attestations) in the registry: (reference, amd64, arm64 digests)."""
    store = Store(tmp_path_factory.mktemp("other-store"))
    index = make_image(store, layer_sizes=(1000,), seed="attest-other")
    store.tag("other/img:1", index)
    ref = f"{registry.host}/other/img:1"
    with RegistryClient(registry.host) as client:
        push_image(store, "other/img:1", ref, client)
    manifests = parse_index(store.read_blob(index.digest)).manifests
    by_arch = {d.platform.architecture: d.digest for d in manifests if d.platform is not None}
    return ref, by_arch["amd64"], by_arch["arm64"]


def _attach(registry: RegistryProcess, repo: str, subject: str, bundle: bytes, predicate_type: str) -> None:
    """Attach ``bundle`` to ``subject`` as cosign v3 does (the library's layout, pushed by the client)."""
    with RegistryClient(registry.host) as client:
        desc, _ = client.get_manifest(repo, subject)
        manifest = bundle_manifest(
            bundle, subject=desc, predicate_type=predicate_type, created="2030-01-01T00:00:00Z"
        )
        parsed = json.loads(manifest)
        client.put_blob(repo, Descriptor.from_json(parsed["config"]), b"{}")
        client.put_blob(repo, Descriptor.from_json(parsed["layers"][0]), bundle)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        client.attach(repo, manifest, Descriptor(MEDIA_TYPE_MANIFEST, digest, len(manifest)), desc)


def test_attestation_moved_to_another_image_fails(
    built: Path, pushed: str, registry: RegistryProcess, other_image: tuple[str, str, str]
) -> None:
    ref, amd64, _arm64 = other_image
    pub = str(built / "keys" / "bastion.pub")
    # A genuine, signed SPDX bundle of bastion/static, attached to another image's manifest.
    bundle = _ok(run_cli("attest", "get", pushed, "--type", "spdx", "--platform", "linux/amd64",
                         "--format", "envelope", "--key", pub, home=built)).encode()  # fmt: skip
    _attach(registry, "other/img", amd64, bundle, "https://spdx.dev/Document")
    assert "https://spdx.dev/Document" in [
        a["predicateType"] for a in _listing(ref, built, "--platform", "linux/amd64")
    ]
    result = run_cli(
        "attest", "get", ref, "--type", "spdx", "--platform", "linux/amd64", "--key", pub, home=built
    )
    assert result.code == 1, result.stderr
    assert "copied from another image" in result.stderr and result.stdout == ""
    # Without --verify it is shown (and said to be unverified): listing is not trusting.
    shown = run_cli("attest", "get", ref, "--type", "spdx", "--platform", "linux/amd64", home=built)
    assert shown.code == 0 and "NOT verified" in shown.stderr


def test_tampered_bundle_blob_is_refused(
    built: Path, registry: RegistryProcess, other_image: tuple[str, str, str], tmp_path: Path
) -> None:
    """A flipped byte in a bundle blob in the registry's storage: the client refuses the blob because
    it does not match its digest, before any signature is checked: IntegrityError, exit 2."""
    ref, amd64, _arm64 = other_image
    key, pub = _key_pair(tmp_path, "tamper")
    statement = make_statement([Subject.for_digest("other/img", amd64)], VEX, {"note": "unique to this test"})
    bundle = sign_statement(statement, KeySigner(key))
    _attach(registry, "other/img", amd64, bundle, VEX)
    args = ("attest", "get", ref, "--type", "vex", "--platform", "linux/amd64", "--key", str(pub))
    _ok(run_cli(*args, home=built))
    data = registry.blob_data_path("sha256:" + hashlib.sha256(bundle).hexdigest())
    original = data.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    data.write_bytes(bytes(flipped))
    try:
        result = run_cli(*args, home=built)
        assert result.code == 2, result.stderr
        assert "expected sha256:" in result.stderr and result.stdout == ""
    finally:
        data.write_bytes(original)


def test_cosign_legacy_tags(
    built: Path, registry: RegistryProcess, other_image: tuple[str, str, str], tmp_path: Path
) -> None:
    ref, amd64, arm64 = other_image
    key, pub = _key_pair(tmp_path, "cosign")
    hexdigest = amd64.removeprefix("sha256:")
    # ATTESTATION_SPEC.md: an image manifest whose layers are DSSE envelopes; cosign puts the predicate
    # type in the layer annotation "predicateType".
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"{registry.host}/other/img", "digest": {"sha256": hexdigest}}],
        "predicateType": VEX,
        "predicate": {"@context": VEX, "statements": []},
    }
    payload = json.dumps(statement).encode()
    sig = key.sign(hand_pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
    envelope = json.dumps({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }).encode()  # fmt: skip
    att_layer = _blob("application/vnd.dsse.envelope.v1+json", envelope,
                      {"predicateType": VEX, "dev.cosignproject.cosign/signature": ""})  # fmt: skip
    # SIGNATURE_SPEC.md: a simple-signing payload layer, its base64 signature in an annotation.
    simple = json.dumps({
        "critical": {
            "identity": {"docker-reference": f"{registry.host}/other/img"},
            "image": {"docker-manifest-digest": amd64},
            "type": "cosign container image signature",
        },
        "optional": None,
    }).encode()  # fmt: skip
    simple_sig = base64.b64encode(key.sign(simple, ec.ECDSA(hashes.SHA256()))).decode()
    sig_layer = _blob("application/vnd.dev.cosign.simplesigning.v1+json", simple,
                      {"dev.cosignproject.cosign/signature": simple_sig})  # fmt: skip
    with RegistryClient(registry.host) as client:
        # The amd64 signature also copied, as it is, to the arm64 image's .sig tag: it must not verify there.
        legacy = {f"{hexdigest}.att": att_layer, f"{hexdigest}.sig": sig_layer, f"{arm64[7:]}.sig": sig_layer}
        for tag, (layer, content) in legacy.items():
            config = canonical_json({"architecture": "", "os": "", "config": {},
                                     "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}})  # fmt: skip
            config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)}  # fmt: skip
            client.put_blob("other/img", Descriptor.from_json(config_desc), config)
            client.put_blob("other/img", Descriptor.from_json(layer), content)
            manifest = canonical_json({"schemaVersion": 2, "mediaType": MEDIA_TYPE_MANIFEST,
                                       "config": config_desc, "layers": [layer]})  # fmt: skip
            client.put_manifest("other/img", f"sha256-{tag}", manifest, MEDIA_TYPE_MANIFEST)

    formats = {a["format"]: a for a in _listing(ref, built, "--platform", "linux/amd64")}
    assert formats["cosign-dsse"]["predicateType"] == VEX
    assert formats["cosign-dsse"]["source"] == f"sha256-{hexdigest}.att"
    assert formats["cosign-simplesigning"]["source"] == f"sha256-{hexdigest}.sig"
    vex = run_cli(
        "attest", "get", ref, "--type", "openvex", "--platform", "linux/amd64", "--key", str(pub), home=built
    )
    assert json.loads(_ok(vex)) == statement["predicate"]
    signed = run_cli("attest", "get", ref, "--type", "signature", "--platform", "linux/amd64",
                     "--key", str(pub), home=built)  # fmt: skip
    assert json.loads(_ok(signed))["critical"]["image"]["docker-manifest-digest"] == amd64
    checks = ("--type", "vex", "--type", "signature", "--platform", "linux/amd64")
    _ok(run_cli("verify", ref, "--key", str(pub), *checks, home=built))
    copied = run_cli("attest", "get", ref, "--type", "signature", "--platform", "linux/arm64",
                     "--key", str(pub), home=built)  # fmt: skip
    assert copied.code == 1 and f"the signature is for {amd64}" in copied.stderr
    _, wrong = _key_pair(tmp_path, "wrong")
    assert run_cli("verify", ref, "--key", str(wrong), *checks, home=built).code == 1

    # Mirroring carries the legacy tags along (digests, hence tag names, unchanged).
    copy = f"{registry.host}/attest-mirror/img:1"
    _ok(run_cli("mirror", ref, copy, home=built))
    _ok(run_cli("verify", copy, "--key", str(pub), *checks, home=built))


def _blob(media_type: str, content: bytes, annotations: dict[str, str]) -> tuple[dict[str, object], bytes]:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    return {
        "mediaType": media_type,
        "digest": digest,
        "size": len(content),
        "annotations": annotations,
    }, content
