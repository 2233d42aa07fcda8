"""Shared fixtures for the OCI tests: a fresh store and a small tree of layer entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.oci import LayerEntry, Store

EPOCH = 1_700_000_000


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def make_entries(tmp_path: Path) -> Callable[..., list[LayerEntry]]:
    """A small root filesystem: dirs, a setuid binary, a file read from disk, links, a long name."""

    def make(mtime: int = EPOCH - 100, arch: str = "amd64") -> list[LayerEntry]:
        source = tmp_path / f"source-{arch}.txt"
        source.write_bytes(f"content read from disk for {arch}\n".encode() * 100)
        long_dir = "usr/share/" + "d" * 120
        return [
            LayerEntry("bin", "dir", 0o755, 0, 0, mtime),
            LayerEntry("bin/su", "file", 0o4755, 0, 0, mtime, data=b"#!/bin/sh\necho su\n"),
            LayerEntry("bin/sg", "file", 0o2755, 0, 42, mtime, data=b"setgid\n"),
            LayerEntry("bin/aa-alias", "hardlink", 0o4755, 0, 0, mtime, linkname="bin/su"),
            LayerEntry("etc", "dir", 0o755, 0, 0, mtime),
            LayerEntry("etc/arch", "file", 0o644, 0, 0, mtime, data=arch.encode()),
            LayerEntry("etc/from-disk", "file", 0o644, 0, 0, mtime, source=source),
            LayerEntry("etc/sh-link", "symlink", 0o777, 0, 0, mtime, linkname="../bin/su"),
            LayerEntry("home", "dir", 0o755, 0, 0, mtime),
            LayerEntry("home/nonroot", "dir", 0o700, 65532, 65532, mtime),
            LayerEntry("home/nonroot/.profile", "file", 0o600, 65532, 65532, mtime, data=b"# profile\n"),
            LayerEntry("tmp", "dir", 0o1777, 0, 0, mtime),
            LayerEntry("usr", "dir", 0o755, 0, 0, mtime),
            LayerEntry("usr/share", "dir", 0o755, 0, 0, mtime),
            LayerEntry(long_dir, "dir", 0o755, 0, 0, mtime),
            LayerEntry(
                long_dir + "/caf\u00e9-\u00fcml\u00e4ut.txt", "file", 0o644, 0, 0, mtime, data=b"utf-8\n"
            ),
        ]

    return make
