"""A two-platform image built with bastion.oci, checked by the real tools: skopeo and umoci.

umoci refuses a tag that leads to more than one manifest ("tag is ambiguous"), so it is given a
single-platform export; skopeo reads the whole index.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.errors import InputError
from bastion.oci import (
    Descriptor,
    LayerEntry,
    Platform,
    RuntimeConfig,
    Store,
    add_layer,
    export_docker_archive,
    export_oci_dir,
    put_image,
    put_index,
)

EPOCH = 1_700_000_000
REF = "bastion/tiny:1.0"
Entries = Callable[..., list[LayerEntry]]

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
needs_umoci = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed: {result.stderr}"
    return result.stdout


@pytest.fixture
def image(store: Store, make_entries: Entries) -> Descriptor:
    """``bastion/tiny:1.0``: an index over linux/amd64 and linux/arm64, two layers each."""
    manifests = []
    for arch in ("amd64", "arm64"):
        base = add_layer(store, make_entries(arch=arch), source_date_epoch=EPOCH)
        extra = add_layer(
            store,
            [
                LayerEntry("etc", "dir", 0o755, 0, 0, EPOCH),
                LayerEntry("etc/os-release", "file", 0o644, 0, 0, EPOCH, data=b"ID=bastion\n"),
            ],
            source_date_epoch=EPOCH,
        )
        runtime = RuntimeConfig(user="65532", env=("PATH=/usr/bin:/bin",), cmd=("/bin/su",))
        manifests.append(
            put_image(
                store,
                platform=Platform.parse(f"linux/{arch}"),
                layers=[base, extra],
                runtime=runtime,
                source_date_epoch=EPOCH,
            )
        )
    return store.tag(REF, put_index(store, manifests))


def test_export_oci_dir_is_deterministic(store: Store, image: Descriptor, tmp_path: Path) -> None:
    export_oci_dir(store, REF, tmp_path / "a")
    export_oci_dir(store, "tiny:1.0", tmp_path / "b")

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(tmp_path / "a") == files(tmp_path / "b")
    # the index, a manifest and a config per platform, two base layers and one shared layer
    assert len(list((tmp_path / "a/blobs/sha256").iterdir())) == 1 + 2 * 2 + 3


def test_export_refuses_a_directory_that_is_not_a_layout(
    store: Store, image: Descriptor, tmp_path: Path
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/file").write_text("mine")
    with pytest.raises(InputError):
        export_oci_dir(store, REF, tmp_path / "busy")


@needs_skopeo
def test_skopeo_reads_the_exported_index(store: Store, image: Descriptor, tmp_path: Path) -> None:
    dest = tmp_path / "oci"
    export_oci_dir(store, REF, dest, "1.0")
    raw = _run("skopeo", "inspect", "--raw", f"oci:{dest}:1.0")
    assert raw.encode() == store.read_blob(image.digest)
    for arch in ("amd64", "arm64"):
        info = json.loads(_run("skopeo", "--override-arch", arch, "inspect", f"oci:{dest}:1.0"))
        assert info["Architecture"] == arch and info["Os"] == "linux"
        assert info["Created"] == "2023-11-14T22:13:20Z"
        assert len(info["Layers"]) == 2
    config = json.loads(_run("skopeo", "--override-arch", "arm64", "inspect", "--config", f"oci:{dest}:1.0"))
    assert config["variant"] == "v8" and config["config"]["User"] == "65532"
    # the store itself is readable with its full reference names
    assert _run("skopeo", "inspect", "--raw", f"oci:{store.root}:{REF}").encode() == store.read_blob(
        image.digest
    )


@needs_skopeo
def test_skopeo_copies_all_platforms_digest_for_digest(
    store: Store, image: Descriptor, tmp_path: Path
) -> None:
    export_oci_dir(store, REF, tmp_path / "src", "1.0")
    _run(
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        f"oci:{tmp_path / 'src'}:1.0",
        f"oci:{tmp_path / 'dst'}:copied",
    )
    copied = Store(tmp_path / "dst", create=False).resolve("copied")
    assert copied.digest == image.digest


@needs_umoci
def test_umoci_unpacks_what_we_put_in(
    store: Store, image: Descriptor, make_entries: Entries, tmp_path: Path
) -> None:
    dest = tmp_path / "oci"
    export_oci_dir(store, REF, dest, "amd64", platform="linux/amd64")
    bundle = tmp_path / "bundle"
    _run("umoci", "unpack", "--rootless", "--image", f"{dest}:amd64", str(bundle))
    rootfs = bundle / "rootfs"
    for entry in make_entries(arch="amd64"):
        path = rootfs / entry.path
        if entry.kind == "symlink":
            assert path.is_symlink() and str(path.readlink()) == entry.linkname
            continue
        assert path.stat().st_mode & 0o7777 == entry.mode, entry.path
        if entry.kind == "file":
            expected = entry.data if entry.data is not None else entry.source.read_bytes()  # type: ignore[union-attr]
            if entry.path != "etc/os-release":
                assert path.read_bytes() == expected, entry.path
        if entry.kind == "hardlink":
            assert path.stat().st_ino == (rootfs / entry.linkname).stat().st_ino
    assert (rootfs / "etc/os-release").read_bytes() == b"ID=bastion\n"  # second layer applied
    assert (rootfs / "etc/arch").read_bytes() == b"amd64"


@needs_skopeo
def test_docker_archive(store: Store, image: Descriptor, tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    manifest = export_docker_archive(store, REF, first, "linux/arm64")
    export_docker_archive(store, "tiny:1.0", second, "linux/arm64")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        docker_manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert all(m.uid == 0 and m.uname == "" and m.mtime == 0 for m in tar.getmembers())
    assert docker_manifest[0]["RepoTags"] == [REF]
    assert len(docker_manifest[0]["Layers"]) == 2
    assert f"blobs/sha256/{manifest.digest.removeprefix('sha256:')}" in names
    info = json.loads(_run("skopeo", "inspect", f"docker-archive:{first}"))
    assert info["Architecture"] == "arm64" and len(info["Layers"]) == 2
    # the RepoTags entry is what selects the image by name
    by_name = json.loads(_run("skopeo", "inspect", f"docker-archive:{first}:{REF}"))
    assert by_name["Digest"] == info["Digest"]
    # a full copy decompresses every layer and checks it against the config's diff_ids
    _run("skopeo", "copy", f"docker-archive:{first}", f"oci:{tmp_path / 'back'}:x")


def test_docker_archive_unknown_platform(store: Store, image: Descriptor, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="linux/s390x") as excinfo:
        export_docker_archive(store, REF, tmp_path / "x.tar", "linux/s390x")
    assert "linux/amd64" in excinfo.value.diagnostic()
    assert not (tmp_path / "x.tar").exists()
