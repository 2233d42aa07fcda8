"""open_target: every source kind, layer semantics (whiteouts, owners, links), and the safety rules."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.errors import InputError, IntegrityError, UnsafeArchiveError
from bastion.image import FileKind, open_target
from bastion.oci import Store, export_docker_archive
from tests.image.layouts import E, docker_save_legacy, multi_platform, oci_dir

BASE = [
    E("etc", "dir", mode=0o755),
    E("etc/passwd", data=b"root:x:0:0::/root:/usr/sbin/nologin\n"),
    E("etc/shadow", data=b"secret\n", mode=0o640, gid=42),
    E(
        "usr/bin/ping",
        data=b"\x7fELF-not-really",
        mode=0o4755,
        xattrs={"security.capability": "\x01\x00\x00\x02"},
    ),
    E("usr/bin/sh-link", "symlink", link="/usr/bin/ping", mode=0o777),
    E("usr/bin/ping-hard", "hardlink", link="usr/bin/ping"),
    E("dev/null", "char", mode=0o666),
    E("home/nonroot", "dir", mode=0o700, uid=65532, gid=65532),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(tmp_path / "home")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "plain"])
def test_oci_dir_records_what_the_tar_headers_say(
    tmp_path: Path, settings: Settings, compression: str
) -> None:
    layout = tmp_path / "layout"
    oci_dir(layout, [BASE], compression=compression)
    with open_target(f"oci-dir://{layout}:test/image:1", settings) as target:
        files = target.files
        assert files["/etc/shadow"].mode == 0o640 and files["/etc/shadow"].gid == 42
        ping = files["/usr/bin/ping"]
        assert (ping.mode, ping.kind, ping.size, ping.layer) == (0o4755, FileKind.FILE, 15, 0)
        assert ping.xattrs == {"security.capability": b"\x01\x00\x00\x02"}
        assert files["/usr/bin/sh-link"].link_target == "/usr/bin/ping"
        hard = files["/usr/bin/ping-hard"]
        assert (hard.kind, hard.link_target, hard.size) == (FileKind.HARDLINK, "/usr/bin/ping", 15)
        assert target.read("/usr/bin/ping-hard") == b"\x7fELF-not-really"
        assert files["/home/nonroot"].uid == 65532
        assert files["/dev/null"].kind is FileKind.CHAR_DEVICE
        with pytest.raises(FileNotFoundError):
            target.read("/dev/null")  # listed, no content
        with pytest.raises(FileNotFoundError):
            target.read("/usr/bin/sh-link")  # symlinks are never followed
        with target.open("/usr/bin/ping") as f:
            f.seek(4)
            assert f.read() == b"-not-really" and f.seek(0, os.SEEK_END) == 15
        assert target.platform == "linux/amd64" and target.repository == "test/image" and target.tag == "1"
        assert target.layers[0].diff_id and target.layers[0].digest.startswith("sha256:")
        assert target.root is None
        # Nothing of the image is on disk as a file of its own: only the layers' uncompressed spools.
        (spools,) = (settings.home / "work").iterdir()
        assert [p.name for p in spools.iterdir()] == ["layer-0.tar"]
    assert list((settings.home / "work").iterdir()) == []


def test_whiteouts_hide_lower_layers_only(tmp_path: Path, settings: Settings) -> None:
    lower = [
        E("a/x", data=b"x"),
        E("a/y", data=b"y"),
        E("b/old1", data=b"1"),
        E("b/sub/old2", data=b"2"),
        E("c/deep/file", data=b"c"),
        E("d/lower", data=b"l"),
    ]
    upper = [
        E("a/.wh.x"),
        E("b/new", data=b"n"),
        E("b/.wh..wh..opq"),  # after b/new: the opaque marker must not hide what this layer wrote
        E(".wh.c"),
        E("d/same-layer", data=b"s"),
        E("d/.wh.same-layer"),  # a whiteout hides lower layers only, never its own layer
        E("d/.wh.lower"),
    ]
    layout = tmp_path / "layout"
    oci_dir(layout, [lower, upper])
    with open_target(f"oci-dir://{layout}", settings) as target:
        paths = {p for p in target.files if p.count("/") >= 1}
        assert {"/a/y", "/b/new", "/d/same-layer"} <= paths
        for gone in ("/a/x", "/b/old1", "/b/sub", "/b/sub/old2", "/c", "/c/deep/file", "/d/lower"):
            assert gone not in target.files
        assert not any(".wh." in p for p in target.files)
        assert target.files["/b/new"].layer == 1 and target.files["/a/y"].layer == 0


def test_a_hardlink_keeps_the_content_it_was_made_with(tmp_path: Path, settings: Settings) -> None:
    """A hardlink is a second name for an inode: replacing or whiting out the first name in a later
    layer does not change what the link reads."""
    lower = [E("a", data=b"first"), E("b", "hardlink", link="a"), E("c", data=b"other")]
    upper = [E("a", data=b"replaced"), E(".wh.c"), E("d", "hardlink", link="c")]
    layout = tmp_path / "layout"
    oci_dir(layout, [lower, upper])
    with open_target(f"oci-dir://{layout}", settings) as target:
        assert target.read("/a") == b"replaced" and target.read("/b") == b"first"
        assert "/c" not in target.files and target.files["/d"].kind is FileKind.HARDLINK
        with pytest.raises(FileNotFoundError):
            target.read("/d")  # its target was gone when it was applied: listed, no content


def test_a_traversal_entry_is_refused_and_nothing_is_written_outside(
    tmp_path: Path, settings: Settings
) -> None:
    layout = tmp_path / "layout"
    oci_dir(layout, [[E("ok", data=b"1"), E("../../escaped", data=b"pwned")]])
    with pytest.raises(UnsafeArchiveError, match="escape"):
        open_target(f"oci-dir://{layout}", settings)
    assert not list(tmp_path.rglob("escaped"))
    assert list((settings.home / "work").iterdir()) == []  # the partial tree is removed


def test_a_hardlink_out_of_the_root_is_refused(tmp_path: Path, settings: Settings) -> None:
    layout = tmp_path / "layout"
    oci_dir(layout, [[E("steal", "hardlink", link="../../../etc/passwd")]])
    with pytest.raises(UnsafeArchiveError):
        open_target(f"oci-dir://{layout}", settings)


def test_entries_under_a_symlinked_parent_never_write_through_it(tmp_path: Path, settings: Settings) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layout = tmp_path / "layout"
    lower = [
        E("etc", "symlink", link=str(outside)),
        E("rel", "symlink", link="../../../../../../" + str(outside)),
    ]
    upper = [
        E("etc/passwd", data=b"inside\n"),
        E("rel/file", data=b"inside too\n"),
        E("same", "symlink", link=str(outside)),
        E("same/file", data=b"same layer\n"),
    ]
    oci_dir(layout, [lower, upper])
    with open_target(f"oci-dir://{layout}", settings) as target:
        assert list(outside.iterdir()) == []
        assert target.files["/etc"].kind is FileKind.DIRECTORY  # the symlink became a directory
        assert target.read("/etc/passwd") == b"inside\n"
        assert target.read("/same/file") == b"same layer\n"


def test_a_flipped_byte_in_a_layer_is_an_integrity_error(tmp_path: Path, settings: Settings) -> None:
    layout = tmp_path / "layout"
    store = oci_dir(layout, [BASE])
    manifest = store.read_manifest(store.resolve("test/image:1"))
    blob = store.blob_path(manifest.layers[0].digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        open_target(f"oci-dir://{layout}", settings)
    assert list((settings.home / "work").iterdir()) == []


def test_a_tampered_config_is_refused_before_it_is_used(tmp_path: Path, settings: Settings) -> None:
    layout = tmp_path / "layout"
    store = oci_dir(layout, [BASE])
    config = store.blob_path(store.read_manifest(store.resolve("test/image:1")).config.digest)
    config.chmod(0o644)
    config.write_bytes(config.read_bytes().replace(b"65532", b"00000"))
    with pytest.raises(IntegrityError, match="config"):
        open_target(f"oci-dir://{layout}", settings)


def test_an_index_gives_the_platform_asked_or_names_the_ones_it_has(
    tmp_path: Path, settings: Settings
) -> None:
    layout = tmp_path / "layout"
    multi_platform(layout, [BASE], ["amd64", "arm64"], "multi/app:1")
    with open_target(f"oci-dir://{layout}", settings, platform="linux/arm64") as target:
        assert target.platform == "linux/arm64"  # the one canonical form (issue 18 item 4)
        assert target.index_digest is not None and target.manifest_digest != target.index_digest
    with pytest.raises(InputError) as err:
        open_target(f"oci-dir://{layout}", settings, platform="linux/s390x")
    assert "linux/amd64" in err.value.diagnostic() and "linux/arm64" in err.value.diagnostic()


def test_a_store_name_resolves_through_the_local_store(settings: Settings) -> None:
    oci_dir(settings.store_dir, [BASE], tag="bastion/tiny:1.0")
    with open_target("tiny:1.0", settings) as target:
        assert (target.repository, target.tag) == ("bastion/tiny", "1.0")
        assert target.manifest_digest is not None
    with pytest.raises(InputError, match="unknown image"):
        open_target("bastion/absent:1", settings)


def test_docker_archive_in_both_formats(tmp_path: Path, settings: Settings) -> None:
    store = oci_dir(tmp_path / "store", [BASE, [E("app/main", data=b"app")]], tag="bastion/app:3")
    modern = tmp_path / "modern.tar"
    export_docker_archive(store, "bastion/app:3", modern, "linux/amd64")
    legacy = docker_save_legacy(tmp_path / "legacy.tar", [BASE, [E("app/main", data=b"app")]])
    with (
        open_target(f"docker-archive://{modern}", settings) as new,
        open_target(f"docker-archive://{legacy}", settings) as old,
    ):
        assert new.manifest_digest is not None and old.manifest_digest is None
        assert (new.repository, old.repository) == ("docker.io/bastion/app", "legacy/app")  # containerd name
        assert set(new.files) == set(old.files)
        assert old.read("/app/main") == b"app" and old.files["/etc/shadow"].gid == 42
        assert [layer.diff_id for layer in new.layers] == [layer.diff_id for layer in old.layers]


def test_a_tampered_legacy_docker_layer_fails_its_diff_id(tmp_path: Path, settings: Settings) -> None:
    legacy = docker_save_legacy(tmp_path / "legacy.tar", [BASE])
    data = legacy.read_bytes()
    index = data.index(b"root:x:0:0")
    legacy.write_bytes(data[:index] + b"ROOT" + data[index + 4 :])
    with pytest.raises(IntegrityError, match="diff_id"):
        open_target(f"docker-archive://{legacy}", settings)


def test_fs_dir_lists_files_with_lstat(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"#!tool\n")
    (root / "usr/bin/tool").chmod(0o750)
    (root / "bin").symlink_to("usr/bin")
    with open_target(f"fs://{root}", settings) as target:
        tool = target.files["/usr/bin/tool"]
        assert (tool.mode, tool.size, tool.uid, tool.layer) == (0o750, 7, os.getuid(), None)
        assert target.files["/bin"].link_target == "usr/bin"
        assert target.layers == () and target.manifest_digest is None
        assert hashlib.sha256(target.read("/usr/bin/tool")).hexdigest()
    assert root.exists()  # scanned in place, never removed


def test_unsupported_references(settings: Settings) -> None:
    with pytest.raises(InputError, match="scheme"):
        open_target("ftp://x", settings)
    with pytest.raises(InputError):
        open_target("oci-dir:///nonexistent/layout", settings)


def test_a_layout_with_two_images_needs_a_tag(tmp_path: Path, settings: Settings) -> None:
    layout = tmp_path / "layout"
    store = oci_dir(layout, [BASE], tag="one/app:1")
    store.tag("two/app:2", store.resolve("one/app:1"))
    oci_dir(layout, [[E("other", data=b"o")]], tag="three/app:3")
    with pytest.raises(InputError, match="3 images"):
        open_target(f"oci-dir://{layout}", settings)
    with open_target(f"oci-dir://{layout}:3", settings) as target:
        assert "/other" in target.files and target.repository == "three/app"
    assert isinstance(Store(layout), Store)


def test_a_sparse_file_reads_as_its_whole_content(tmp_path: Path, settings: Settings) -> None:
    """GNU tar's sparse members keep only the data runs: the content is expanded, not read as one
    run of the layer (which would give the sparse map and the runs back to back)."""
    import shutil
    import subprocess

    from bastion.oci import MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER, MEDIA_TYPE_MANIFEST, image_manifest
    from tests.image.layouts import config_doc, sha256

    if shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
    source = tmp_path / "src"
    source.mkdir()
    with (source / "holes").open("wb") as f:
        f.write(b"head")
        f.seek(1024 * 1024)
        f.write(b"middle")
        f.truncate(3 * 1024 * 1024)
    (source / "plain").write_bytes(b"after the sparse one")
    tar_path = tmp_path / "layer.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-C", str(source), "-cf", str(tar_path), "holes", "plain"],
                   check=True)  # fmt: skip
    tar = tar_path.read_bytes()
    store = Store(tmp_path / "layout")
    layer = store.put_blob(tar, MEDIA_TYPE_LAYER)
    config = store.put_json(config_doc([sha256(tar)]), MEDIA_TYPE_CONFIG)
    store.tag("test/sparse:1", store.put_json(image_manifest(config, [layer]), MEDIA_TYPE_MANIFEST))
    with open_target(f"oci-dir://{tmp_path / 'layout'}", settings) as target:
        content = target.read("/holes")
        assert len(content) == 3 * 1024 * 1024 == target.files["/holes"].size
        assert content[:4] == b"head" and content[1024 * 1024 : 1024 * 1024 + 6] == b"middle"
        assert content.count(0) == len(content) - 10
        assert target.read("/plain") == b"after the sparse one"


def test_an_image_that_expands_beyond_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    """A decompression bomb (here 2 MiB of zeros, a few KB of gzip) against a 1 MiB limit: refused
    with the limit named, and the spools already written are removed."""
    settings = Settings(tmp_path / "home", max_image_size=1024 * 1024)
    layout = tmp_path / "layout"
    oci_dir(layout, [[E("zeros", data=bytes(2 * 1024 * 1024))]])
    with pytest.raises(InputError, match="expands to more than 1048576 bytes") as raised:
        open_target(f"oci-dir://{layout}", settings)
    assert "BASTION_MAX_IMAGE_SIZE" in (raised.value.hint or "")
    assert list((settings.home / "work").iterdir()) == []
    with open_target(f"oci-dir://{layout}", Settings(tmp_path / "home")) as target:  # the default: 64 GiB
        assert target.files["/zeros"].size == 2 * 1024 * 1024


def test_the_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_MAX_IMAGE_SIZE", "500M")
    assert Settings.from_env().max_image_size == 500 * 1024 * 1024
    monkeypatch.setenv("BASTION_MAX_IMAGE_SIZE", "lots")
    with pytest.raises(InputError, match="not a size"):
        Settings.from_env()


def test_a_tree_that_changes_during_the_scan_is_scanned_or_refused_never_a_crash(tmp_path: Path) -> None:
    """fs:///proc/self (entries vanish while the tree is listed) is scanned, not an internal error (exit 3)."""
    from tests.conftest import run_cli

    for tree in ("/proc/self", "/proc/self/task"):
        result = run_cli("sbom", f"fs://{tree}", "--format", "spdx-json", "-o", str(tmp_path / "out.json"),
                         home=tmp_path / "home")  # fmt: skip
        assert result.code in (0, 2), result.stderr
        assert "internal error" not in result.stderr
