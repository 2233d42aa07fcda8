"""``bastion export`` of a multi-platform image is readable by the tools the README names (issue 17,
item 12): skopeo reads the index under the image's name; umoci 0.4, which refuses a tag leading to
several manifests ("tag is ambiguous"), unpacks each platform under ``NAME-<arch>``; the attestations
still come along and ``bastion verify``/``sbom`` on the copy still find one image without a tag."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import CliResult, run_cli

from bastion.attest import (
    DEFAULT_REQUIRED,
    Subject,
    attach_bundle,
    ephemeral_signer,
    make_statement,
    public_key_pem,
    sign_statement,
)
from bastion.oci import (
    ANNOTATION_REF_NAME,
    Descriptor,
    LayerEntry,
    Platform,
    RuntimeConfig,
    Store,
    add_layer,
    parse_index,
    put_image,
    put_index,
)

IMAGE = "bastion/tiny:1.0"
EPOCH = 1_700_000_000

needs_umoci = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def _bastion(*args: str, home: Path) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home)
    assert time.monotonic() - started < 120, args
    assert result.code in (0, 1, 2), result.stderr  # never an internal error
    return result


def _image(store: Store, architectures: tuple[str, ...]) -> Descriptor:
    """An index over real single-layer images, one per architecture, each naming its architecture in
    /etc/arch."""
    manifests = []
    for arch in architectures:
        layer = add_layer(
            store,
            [
                LayerEntry("etc", "dir", 0o755, 0, 0, EPOCH),
                LayerEntry("etc/arch", "file", 0o644, 0, 0, EPOCH, data=arch.encode()),
            ],
            source_date_epoch=EPOCH,
        )
        manifests.append(
            put_image(
                store,
                platform=Platform("linux", arch),
                layers=[layer],
                runtime=RuntimeConfig(user="65532"),
                source_date_epoch=EPOCH,
            )
        )
    return put_index(store, manifests)


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    """(BASTION_HOME, public key): IMAGE for amd64 and arm64, each platform with its signed SBOMs and
    provenance attached as a build attaches them."""
    home = tmp_path / "home"
    store = Store(home / "store")
    index = store.tag(IMAGE, _image(store, ("amd64", "arm64")))
    signer = ephemeral_signer()
    pub = tmp_path / "key.pub"
    pub.write_bytes(public_key_pem(signer.public_key))
    for desc in parse_index(store.read_blob(index.digest)).manifests:
        for kind in DEFAULT_REQUIRED:
            statement = make_statement([Subject.for_digest("bastion/tiny", desc.digest)], kind, {"x": 1})
            attach_bundle(
                store,
                desc,
                sign_statement(statement, signer),
                predicate_type=kind,
                created="2030-01-01T00:00:00Z",
            )
    return home, pub


def _export(home: Path, dest: Path, *extra: str) -> CliResult:
    exported = _bastion("export", IMAGE, f"oci-dir://{dest}", *extra, home=home)
    assert exported.code == 0, exported.stderr
    return exported


@needs_umoci
def test_umoci_unpacks_each_platform_of_a_default_export(signed: tuple[Path, Path], tmp_path: Path) -> None:
    home, _ = signed
    dest = tmp_path / "oci"
    exported = _export(home, dest)
    assert f"{IMAGE}-amd64, {IMAGE}-arm64" in exported.stderr  # the tags to give umoci are named
    for arch in ("amd64", "arm64"):
        bundle = tmp_path / f"bundle-{arch}"
        unpacked = _tool("umoci", "unpack", "--rootless", "--image", f"{dest}:{IMAGE}-{arch}", str(bundle))
        assert unpacked.returncode == 0, unpacked.stderr
        assert (bundle / "rootfs/etc/arch").read_text() == arch
    # The index itself is what umoci cannot take; that is why the platform tags exist.
    ambiguous = _tool("umoci", "unpack", "--rootless", "--image", f"{dest}:{IMAGE}", str(tmp_path / "x"))
    assert ambiguous.returncode != 0 and "ambiguous" in ambiguous.stderr


@needs_skopeo
def test_skopeo_reads_the_index_and_each_platform(signed: tuple[Path, Path], tmp_path: Path) -> None:
    home, _ = signed
    dest = tmp_path / "oci"
    _export(home, dest, "--no-attestations")
    raw = _tool("skopeo", "inspect", "--raw", f"oci:{dest}:{IMAGE}")
    assert raw.returncode == 0, raw.stderr
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    for arch in ("amd64", "arm64"):
        info = _tool("skopeo", "inspect", f"oci:{dest}:{IMAGE}-{arch}")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["Architecture"] == arch


def test_the_copy_is_still_one_image_for_bastion(signed: tuple[Path, Path], tmp_path: Path) -> None:
    """The platform tags are part of the index: ``oci-dir://PATH`` without a tag still names it, and
    the attestations came along."""
    home, pub = signed
    dest = tmp_path / "oci"
    _export(home, dest)
    copy = f"oci-dir://{dest}"
    verified = _bastion("verify", copy, "--key", str(pub), home=home)
    assert verified.code == 0, verified.stdout + verified.stderr
    listed = _bastion("attest", "list", copy, "--format", "json", home=home)
    assert listed.code == 0, listed.stderr
    assert len(json.loads(listed.stdout)["attestations"]) == 2 * len(DEFAULT_REQUIRED)
    scanned = _bastion("sbom", copy, "--platform", "linux/arm64", "--format", "table", home=home)
    assert scanned.code == 0, scanned.stderr
    # A platform tag names that platform's image.
    one = _bastion(
        "sbom", f"{copy}:{IMAGE}-arm64", "--platform", "linux/arm64", "--format", "table", home=home
    )
    assert one.code == 0, one.stderr


def test_a_platform_that_cannot_be_a_tag_is_left_untagged(tmp_path: Path) -> None:
    """A pulled image may name any platform; one that cannot be part of a tag name gets no tag, and the
    export still succeeds."""
    home = tmp_path / "home"
    store = Store(home / "store")
    store.tag(IMAGE, _image(store, ("amd64", "not an arch")))
    dest = tmp_path / "oci"
    exported = _export(home, dest)
    names = [e.annotations.get(ANNOTATION_REF_NAME) for e in Store(dest, create=False).index().manifests]
    assert sorted(n for n in names if n) == [IMAGE, f"{IMAGE}-amd64"]
    assert "not an arch" not in exported.stderr
