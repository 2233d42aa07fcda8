"""A fuzzing harness over every parser of outside input.

The contract under test: whatever the input, each entry point returns or raises a
:class:`~bastion.errors.BastionError` (which the CLI turns into exit 1 or 2 with one line), never any
other exception (exit 3), and within a bounded time (hypothesis's ``deadline``). Each target starts from
valid seed documents written here and mutates them (``strategies.py``).

The default run is short and derandomized, so CI is repeatable; ``scripts/fuzz`` runs the same targets
for as long as asked with fresh randomness (``docs/fuzzing.md``).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.errors import BastionError
from tests.fuzz.strategies import json_text, mutated, mutated_bytes

EXAMPLES = int(os.environ.get("BASTION_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=float(os.environ.get("BASTION_FUZZ_DEADLINE_MS", "20000")),
    derandomize=os.environ.get("BASTION_FUZZ_RANDOM") != "1",
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    database=None,
)


def refused_cleanly(call: Callable[[], object]) -> None:
    """Run ``call``; a BastionError is a clean refusal, anything else fails the test."""
    try:
        call()
    except BastionError as error:
        assert error.diagnostic().strip(), "a refusal must say why"


@contextmanager
def written(tmp: Path, name: str, data: bytes) -> Iterator[Path]:
    path = tmp / name
    path.write_bytes(data)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


# --- seeds ----------------------------------------------------------------------------------------

OPENVEX = {
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": "https://example.invalid/vex/1",
    "author": "Fuzz",
    "timestamp": "2026-01-01T00:00:00Z",
    "version": 1,
    "statements": [
        {
            "vulnerability": {"name": "CVE-2023-0001"},
            "products": [
                {
                    "@id": "pkg:oci/x@sha256%3A" + "a" * 64,
                    "subcomponents": [{"@id": "pkg:deb/debian/openssl"}],
                }
            ],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
        },
        {
            "vulnerability": {"name": "CVE-2023-0002"},
            "products": [{"@id": "pkg:deb/debian/zlib1g@1.2"}],
            "status": "fixed",
        },
    ],
}
CYCLONEDX_VEX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "version": 1,
    "vulnerabilities": [
        {"id": "CVE-2023-0001", "analysis": {"state": "not_affected", "justification": "code_not_reachable"},
         "affects": [{"ref": "pkg:deb/debian/openssl@3.0.11-1"}]},
    ],
}  # fmt: skip
POLICY = {
    "required": ["spdx", "provenance"],
    "keys": ["release.pub"],
    "conditions": [
        {"predicate": "provenance", "path": "runDetails.builder.id", "equals": "https://example.invalid/b"},
        {"predicate": "provenance", "path": "buildDefinition.externalParameters.locked", "equals": True},
        {"predicate": "provenance", "path": "a.b", "matches": "^x"},
        {"predicate": "provenance", "path": "a.0.uri", "one-of": ["u"]},
    ],
}
OSV = {
    "id": "PYSEC-2099-1",
    "modified": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2099-0001"],
    "summary": "fuzz",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.31.0"}]}],
            "versions": ["2.0.0", "2.30.0"],
        },
        {
            "package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}],
        },
    ],
}
TRACKER = {
    "openssl": {
        "CVE-2099-0002": {
            "description": "fuzz",
            "scope": "remote",
            "releases": {
                "bookworm": {"status": "resolved", "repositories": {"bookworm": "3.0.11-1"},
                             "fixed_version": "3.0.11-1~deb12u2", "urgency": "high"},
            },
        },
        "CVE-2099-0003": {
            "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "3.0.11-1"}, "urgency": "low",
                                      "nodsa": "Minor", "nodsa_reason": ""}},
        },
    }
}  # fmt: skip
KEV = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2099.01.01",
    "dateReleased": "2099-01-01T00:00:00.000Z",
    "count": 1,
    "vulnerabilities": [
        {"cveID": "CVE-2099-0001", "vendorProject": "x", "product": "y", "vulnerabilityName": "z",
         "dateAdded": "2099-01-01", "shortDescription": "d", "requiredAction": "a", "dueDate": "2099-01-22",
         "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": ["CWE-79"]},
    ],
}  # fmt: skip
SPDX = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "fuzz",
    "documentNamespace": "https://example.invalid/spdx/fuzz",
    "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: fuzz"]},
    "packages": [
        {"SPDXID": "SPDXRef-openssl", "name": "openssl", "versionInfo": "3.0.11-1", "downloadLocation": "NOASSERTION",
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12"}]},
        {"SPDXID": "SPDXRef-requests", "name": "requests", "versionInfo": "2.30.0", "downloadLocation": "NOASSERTION",
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:pypi/requests@2.30.0"}]},
    ],
    "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                       "relatedSpdxElement": "SPDXRef-openssl"}],
}  # fmt: skip
CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "version": 1,
    "components": [
        {"type": "library", "name": "openssl", "version": "3.0.11-1", "bom-ref": "a",
         "purl": "pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12"},
    ],
}  # fmt: skip


# --- VEX ------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.one_of(json_text(OPENVEX), json_text(CYCLONEDX_VEX)))
def test_vex_documents(tmp_path: Path, data: bytes) -> None:
    from bastion.vex import load_vex

    with written(tmp_path, "vex.json", data) as path:
        refused_cleanly(lambda: load_vex(path))


# --- policies -------------------------------------------------------------------------------------


@FUZZ
@given(
    document=mutated(POLICY),
    text=st.sampled_from(["", "a: &a [*a]", "[" * 5000, "x: !!python/object:os.system x"]),
)
def test_policies(tmp_path: Path, document: Any, text: str) -> None:
    from bastion.policy import load_policy

    for body in (yaml.safe_dump(document), text):
        with written(tmp_path, "policy.yaml", body.encode()) as path:
            refused_cleanly(lambda: load_policy(path))


# --- vulnerability feeds and SBOM files -----------------------------------------------------------


@pytest.fixture(scope="module")
def feed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-db")


def _sbom() -> Any:
    from bastion.sbom import Package, PackageType, Sbom

    packages = [
        Package(PackageType.DEB, "openssl", "3.0.11-1", "pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12",
                namespace="debian", source_name="openssl", source_version="3.0.11-1"),
        Package(PackageType.PYPI, "requests", "2.30.0", "pkg:pypi/requests@2.30.0"),
    ]  # fmt: skip
    return Sbom("fuzz", None, "linux/amd64", None, packages=packages, distro="debian-12")


@FUZZ
@given(
    feed=st.one_of(
        st.tuples(st.just("osv.json"), json_text(OSV)),
        st.tuples(st.just("tracker.json"), json_text(TRACKER)),
        st.tuples(st.just("kev.json"), json_text(KEV)),
    )
)
def test_feeds_import_and_then_scan(tmp_path: Path, feed: tuple[str, bytes]) -> None:
    """A bad record is refused or skipped at import; whatever was imported never breaks a scan."""
    from bastion.vuln import import_paths, match_sbom, open_database

    name, data = feed
    home = tmp_path / "home"
    database = open_database(home)
    try:
        with written(tmp_path, name, data) as path:
            refused_cleanly(lambda: import_paths(database, [path], workers=1))
        match_sbom(_sbom(), database)
    finally:
        database.close() if hasattr(database, "close") else None


@FUZZ
@given(data=st.one_of(json_text(SPDX), json_text(CYCLONEDX)))
def test_sbom_files(tmp_path: Path, data: bytes) -> None:
    from bastion.config import Settings
    from bastion.vuln import load_sbom

    with written(tmp_path, "sbom.json", data) as path:
        refused_cleanly(lambda: load_sbom(f"sbom://{path}", Settings(tmp_path / "home")))


# --- DSSE envelopes and Sigstore bundles ----------------------------------------------------------


@pytest.fixture(scope="module")
def signed() -> tuple[Any, dict[str, Any]]:
    from bastion.attest import Subject, Verifier, ephemeral_signer, make_statement, sign_statement

    signer = ephemeral_signer()
    statement = make_statement(
        [Subject(name="x", digest={"sha256": "a" * 64})],
        "https://spdx.dev/Document",
        {"spdxVersion": "SPDX-2.3"},
    )
    return Verifier([signer.public_key]), json.loads(sign_statement(statement, signer))


@FUZZ
@given(data=st.data())
def test_bundles_and_envelopes(signed: tuple[Any, dict[str, Any]], data: st.DataObject) -> None:
    from bastion.attest import verify_bundle

    verifier, bundle = signed
    seed = data.draw(st.sampled_from([bundle, bundle["dsseEnvelope"]]))
    document = data.draw(json_text(seed))
    refused_cleanly(lambda: verify_bundle(document, verifier))


# --- .deb packages --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_deb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("deb")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        "Package: fuzz\nVersion: 1.0-1\nArchitecture: all\nMaintainer: x <x@example.invalid>\nDescription: x\n"
    )
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "fuzz").write_text("#!/bin/sh\n")
    (root / "usr" / "lib").symlink_to("bin")
    out = tmp_path_factory.mktemp("debout") / "fuzz.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(out)], check=True,
                   capture_output=True)  # fmt: skip
    return out.read_bytes()


@FUZZ
@given(data=st.data())
def test_deb_archives(tmp_path: Path, small_deb: bytes, data: st.DataObject) -> None:
    from bastion.debian import DebArchive

    def read(path: Path) -> None:
        with DebArchive(path) as deb:
            deb.control()
            for _entry, stream in deb.iter_data():
                if stream is not None:
                    stream.read()

    with written(tmp_path, "p.deb", data.draw(mutated_bytes(small_deb))) as path:
        refused_cleanly(lambda: read(path))


# --- images ---------------------------------------------------------------------------------------


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in (
            ("etc", tarfile.DIRTYPE, b""),
            ("etc/os-release", tarfile.REGTYPE, b'ID=debian\nVERSION_ID="12"\n'),
            (
                "var/lib/dpkg/status.d/fuzz",
                tarfile.REGTYPE,
                b"Package: fuzz\nVersion: 1.0-1\nArchitecture: all\n",
            ),
            (
                "usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA",
                tarfile.REGTYPE,
                b"Name: x\nVersion: 1.0\n",
            ),
            ("bin", tarfile.SYMTYPE, b"usr/bin"),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, len(payload)
            if kind == tarfile.SYMTYPE:
                info.linkname, info.size = payload.decode(), 0
            tar.addfile(info, io.BytesIO(payload) if kind == tarfile.REGTYPE else None)
    return out.getvalue()


def _layout(root: Path, *, config: Any, manifest_extra: Any, layer: bytes) -> Path:
    """An OCI image layout (image-layout spec) whose documents are whatever is given, digests correct, so
    that the parsers behind the digest checks are reached."""
    import hashlib

    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    layer_digest = put(layer)
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }  # fmt: skip
    if isinstance(manifest_extra, dict):
        manifest.update(manifest_extra)
    manifest_bytes = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest_bytes),
                       "size": len(manifest_bytes), "platform": {"os": "linux", "architecture": "amd64"},
                       "annotations": {"org.opencontainers.image.ref.name": "fuzz"}}],
    }  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"User": "65532", "Env": ["PATH=/usr/bin"]},
    "rootfs": {"type": "layers", "diff_ids": []},
}


@FUZZ
@given(data=st.data())
def test_image_layouts(tmp_path: Path, data: st.DataObject) -> None:
    """open_target on an OCI layout with mutated config, manifest and layer, then an SBOM scan of it."""
    import hashlib
    import shutil

    from bastion.config import Settings
    from bastion.sbom import scan_image

    layer = _layer()
    config = dict(
        CONFIG, rootfs={"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]}
    )
    which = data.draw(st.sampled_from(["config", "manifest", "layer", "index"]))
    if which == "config":
        config = data.draw(mutated(config))
    if which == "layer":
        layer = data.draw(mutated_bytes(layer))
    manifest_extra = data.draw(mutated({"annotations": {"a": "b"}})) if which == "manifest" else None
    import tempfile

    root = _layout(Path(tempfile.mkdtemp(dir=tmp_path)) / "layout", config=config, manifest_extra=manifest_extra,
                   layer=layer)  # fmt: skip
    if which == "index":
        (root / "index.json").write_bytes(data.draw(json_text(json.loads((root / "index.json").read_text()))))
    settings = Settings(tmp_path / "home")

    def scan() -> None:
        scan_image(f"oci-dir://{root}", settings)

    try:
        refused_cleanly(scan)
    finally:
        shutil.rmtree(root.parent)


@pytest.mark.parametrize("diff_ids", [1, "x", {"a": 1}, [1]])
def test_found_by_fuzzing_a_config_whose_diff_ids_are_not_a_list(tmp_path: Path, diff_ids: object) -> None:
    """The first long run's falsifying example (``rootfs.diff_ids: 1`` raised TypeError), through the CLI."""
    from tests.conftest import run_cli

    config = dict(CONFIG, rootfs={"type": "layers", "diff_ids": diff_ids})
    root = _layout(tmp_path / "layout", config=config, manifest_extra=None, layer=_layer())
    result = run_cli("sbom", f"oci-dir://{root}", "--format", "spdx-json", home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert "diff_ids" in result.stderr
