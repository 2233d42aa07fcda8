"""``bastion source build`` refuses bad source input with one line naming the package and the step, and
publishes nothing: a file whose hash differs from the signed index, a .dsc that disagrees with it, a
patch that does not apply. Offline: a tiny source package made here, served on loopback and signed with
the test key; the patch step runs in the real sandbox (bwrap, as root)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import SigningKey, run_cli, serve_directory
from tests.source import srcrepo

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None or shutil.which("dpkg-source") is None,
    reason="source builds run in the sandbox as root (bwrap) and need dpkg-source",
)


def _repo(tmp_path: Path, key: SigningKey) -> tuple[Path, Path]:
    src = srcrepo.make_source(tmp_path)
    return srcrepo.publish(tmp_path / "mirror", src, key.clearsign), src


def _nothing_published(home: Path) -> None:
    assert not (home / "repository" / "dists").exists()


def test_a_source_file_whose_hash_differs_is_refused(tmp_path: Path, test_key: SigningKey) -> None:
    mirror, _ = _repo(tmp_path, test_key)
    orig = mirror / srcrepo.POOL / f"{srcrepo.NAME}_1.0.orig.tar.gz"
    data = bytearray(orig.read_bytes())
    data[len(data) // 2] ^= 0xFF
    orig.write_bytes(bytes(data))
    with serve_directory(mirror) as url:
        path = srcrepo.definition(tmp_path / "def", url, test_key.keyring, {})
        result = run_cli("source", "build", str(path), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"source {srcrepo.NAME} {srcrepo.VERSION}: {srcrepo.NAME}_1.0.orig.tar.gz" in line
    assert "SHA256 is" in line and "the signed index says" in line
    _nothing_published(tmp_path / "home")


def test_a_tampered_sources_index_is_refused(tmp_path: Path, test_key: SigningKey) -> None:
    mirror, _ = _repo(tmp_path, test_key)
    index = mirror / "dists" / "bookworm" / "main" / "source" / "Sources"
    index.write_text(index.read_text().replace("Version: 1.0-1", "Version: 1.0-2"))
    with serve_directory(mirror) as url:
        path = srcrepo.definition(tmp_path / "def", url, test_key.keyring, {})
        result = run_cli("source", "build", str(path), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert "main/source/Sources: SHA256 is" in result.stderr
    _nothing_published(tmp_path / "home")


def test_a_dsc_that_disagrees_with_the_signed_index_is_refused(tmp_path: Path, test_key: SigningKey) -> None:
    """The index vouches for the .dsc's bytes (so it passes its own hash) but the .dsc names a tarball
    other than the one the index lists: dpkg-source would read what the index never vouched for."""
    src = srcrepo.make_source(tmp_path)
    dsc = src / f"{srcrepo.NAME}_{srcrepo.VERSION}.dsc"
    text = dsc.read_text()
    listed = next(
        line for line in text.splitlines() if line.endswith(".orig.tar.gz") and len(line.split()[0]) == 64
    )
    dsc.write_text(text.replace(listed, " " + "0" * 64 + " " + " ".join(listed.split()[1:])))
    mirror = srcrepo.publish(tmp_path / "mirror", src, test_key.clearsign)
    with serve_directory(mirror) as url:
        path = srcrepo.definition(tmp_path / "def", url, test_key.keyring, {})
        result = run_cli("source", "build", str(path), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert (
        f"{srcrepo.NAME}_{srcrepo.VERSION}.dsc: the .dsc's Checksums-Sha256 disagrees with the Sources"
        in line
    )
    assert f"{srcrepo.NAME}_1.0.orig.tar.gz" in line
    _nothing_published(tmp_path / "home")


def test_a_patch_that_does_not_apply_is_named(tmp_path: Path, test_key: SigningKey) -> None:
    mirror, _ = _repo(tmp_path, test_key)
    patches = {"greeting.patch": srcrepo.GOOD_PATCH, "stale.patch": srcrepo.BAD_PATCH}
    with serve_directory(mirror) as url:
        path = srcrepo.definition(tmp_path / "def", url, test_key.keyring, patches)
        result = run_cli("source", "build", str(path), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.removeprefix("error: ").startswith(
        f"source {srcrepo.NAME} {srcrepo.VERSION}+bastion2: patch: patch stale.patch does not apply"
    )
    _nothing_published(tmp_path / "home")


def test_a_source_without_the_package_is_refused(tmp_path: Path, test_key: SigningKey) -> None:
    mirror, _ = _repo(tmp_path, test_key)
    with serve_directory(mirror) as url:
        path = srcrepo.definition(tmp_path / "def", url, test_key.keyring, {})
        path.write_text(path.read_text().replace(f"source: {srcrepo.NAME}", "source: not-there"))
        result = run_cli("source", "build", str(path), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert "source package not-there is in none of the Sources indices" in result.stderr


def test_a_patch_outside_the_definition_is_refused(tmp_path: Path) -> None:
    definition = tmp_path / "def" / "p.yaml"
    definition.parent.mkdir()
    definition.write_text("source: zlib\nreason: r\npatches:\n  - {file: ../escape.patch}\n")
    result = run_cli("source", "build", str(definition), home=tmp_path / "home")
    assert result.code == 2
    assert f"{definition}:4: patches[0].file: '../escape.patch' is not a valid relative path" in result.stderr
