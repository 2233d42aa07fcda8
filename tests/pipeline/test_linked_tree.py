"""Issue 19: as root, the tree the image tests run over hard-links each package file to a verified copy
kept in the cache (``<cache>/unpacked/linked``). Through ``bastion build``: a test that writes to such a
file changes only its own overlay (never the copy, nor what the next test sees), a damaged copy is made
again, and every copy still holds the bytes its name says."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from tests.conftest import run_cli

from bastion.oci import host_platform

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.skipif(
        os.geteuid() != 0, reason="only root's trees are linked (the overlay keeps them read-only)"
    ),
]


def _home(tmp_path: Path, cached_home: Path) -> Path:
    """A home sharing the session's packages and unpacked copies, with linked copies of its own."""
    shared = cached_home.resolve() / "cache"
    cache = tmp_path / "home" / "cache"
    (cache / "unpacked").mkdir(parents=True)
    for entry in shared.iterdir():
        if entry.name != "unpacked":
            (cache / entry.name).symlink_to(entry)
    for entry in (shared / "unpacked").iterdir():
        if entry.name != "linked":
            (cache / "unpacked" / entry.name).symlink_to(entry)
    return tmp_path / "home"


def _definition(path: Path) -> Path:
    path.write_text(
        "\n".join(
            [
                "name: linked",
                "image: test/linked",
                'tags: ["1"]',
                f"platforms: [{host_platform()}]",
                "contents:",
                '  packages: [base-files, busybox-static, "!awk", "!mawk"]',
                "tests:",
                "  - name: overwrite",
                "    command: [/bin/busybox, sh, -c, 'echo CHANGED > /etc/debian_version && /bin/busybox cat /etc/debian_version']",
                "    stdout-contains: CHANGED",
                "  - name: unchanged",
                "    command: [/bin/busybox, cat, /etc/debian_version]",
                '    stdout-contains: "12."',
                "variants:",
                "  dev: {accounts: {run-as: root}}",
            ]
        )
        + "\n"
    )
    return path


def _copies(home: Path) -> list[Path]:
    return [p for p in (home / "cache" / "unpacked" / "linked").rglob("*") if p.is_file()]


def test_tests_write_their_overlay_never_the_linked_copies(tmp_path: Path, cached_home: Path) -> None:
    home = _home(tmp_path, cached_home)
    definition = _definition(tmp_path / "linked.yaml")
    result = run_cli("build", str(definition), "--no-attest", home=home)
    assert result.code == 0, result.stderr
    assert result.seconds < 300
    copies = _copies(home)
    assert copies, "the tree's package files were not linked to copies in the cache"
    for copy in copies:
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == copy.name.split("-")[0], copy
    version = next(c for c in copies if c.read_bytes().startswith(b"12."))
    assert version.stat().st_nlink == 1  # the tree's links are gone with the tree

    # A damaged copy (what a disk error or another process could leave) is made again, not used.
    version.write_bytes(b"XX")
    result = run_cli("build", str(definition), "--no-attest", "--no-cache", home=home)
    assert result.code == 0, result.stderr
    assert version.read_bytes().startswith(b"12.")
    assert not list((home / "work").iterdir()), "the tree was left behind"
