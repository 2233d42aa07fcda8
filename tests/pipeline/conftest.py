"""Root filesystems to test images against: a layout of files and links built here, and the same layout
with the real busybox-static from Debian in it (a shell-free image would do too; busybox gives the
tests ``id``, ``ip`` and ``httpd``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.pipeline._hostids import give_to_sandbox

PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    "www:x:101:102:web:/www:/usr/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\nstaff:x:50:\nwww:x:102:\nnonroot:x:65532:\n"


def make_layout(root: Path) -> Path:
    """A merged-/usr tree with the links image tests must resolve inside the image: absolute, relative,
    escaping, dangling and looping ones. No /proc, /dev or /tmp: the sandbox brings its own."""
    for directory in ("usr/bin", "etc", "www", "home/nonroot", "root"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "root").chmod(0o700)
    (root / "bin").symlink_to("usr/bin")
    (root / "usr/bin/ash").symlink_to("busybox")
    (root / "usr/bin/dangling").symlink_to("/nonexistent")
    (root / "usr/bin/accounts").symlink_to("../../etc/passwd")
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/os-release").write_text('ID=bastion-test\nPRETTY_NAME="Bastion test image"\n')
    (root / "etc/os-release").chmod(0o644)
    (root / "etc/secret").write_text("top secret\n")
    (root / "etc/secret").chmod(0o600)
    (root / "etc/absolute").symlink_to("/etc/os-release")
    (root / "etc/escape").symlink_to("../../../../../../../../etc/hostname")  # the host has one
    (root / "etc/loop-a").symlink_to("loop-b")
    (root / "etc/loop-b").symlink_to("loop-a")
    (root / "www/index.html").write_text("<h1>hello from bastion</h1>\n")
    return root


@pytest.fixture(scope="session")
def layout_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_layout(tmp_path_factory.mktemp("layout") / "rootfs")


def _busybox_deb(home: Path) -> Path:
    """busybox-static from the host's apt cache, else downloaded once from the host's mirror."""
    debs = home / "debs"
    for directory in (Path("/var/cache/apt/archives"), debs):
        if found := sorted(directory.glob("busybox-static_*.deb")):
            return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["apt-get", "download", "busybox-static"], cwd=debs, capture_output=True, check=True, timeout=300
    )
    return sorted(debs.glob("busybox-static_*.deb"))[-1]


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Path:
    """The layout plus /usr/bin/busybox, in a directory only root may enter, under others only root may
    enter (as pytest's are): the sandbox must cope with that."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed (apt-get install bubblewrap)")
    extracted = tmp_path_factory.mktemp("busybox-deb")
    subprocess.run(["dpkg-deb", "-x", str(_busybox_deb(cached_home)), str(extracted)], check=True)
    root = make_layout(tmp_path_factory.mktemp("busybox") / "rootfs")
    shutil.copy2(extracted / "bin/busybox", root / "usr/bin/busybox")
    if os.geteuid() == 0:  # as the builder does: the image's owners, on disk
        os.chown(root / "home/nonroot", 65532, 65532)
    (root / "home/nonroot").chmod(0o700)
    give_to_sandbox(root)  # as root, in the host ids the sandbox runs as
    root.chmod(0o700)  # even the image's root directory need not be open to the image's user
    return root
