"""The catalog's example: zlib rebuilt from Debian's source with Bastion's patch, twice, to the same bytes
(``--check``), published to the local repository whose InRelease verifies with gpgv. Uses the mirror and
takes minutes (the build root is cached by its package set after the first run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, home_sharing_cache, run_cli

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("bwrap") is None, reason="builds run as root in bwrap"
    ),
]


def test_zlib_rebuilds_reproducibly_and_publishes(tmp_path: Path, cached_home: Path) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    result = run_cli(
        "source", "build", str(REPO_ROOT / "catalog/packages/zlib/zlib.yaml"), "--check", home=home
    )
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["version"] == "1:1.2.13.dfsg-1+bastion1" and summary["reproducible"] is True
    assert summary["fixes"] == ["CVE-2099-0001"]
    names = {p["name"] for p in summary["packages"]}
    assert "zlib1g_1.2.13.dfsg-1+bastion1_amd64.deb" in names
    inrelease = home / "repository" / "dists" / "bastion" / "InRelease"
    keyring = home / "repository" / "bastion-archive-keyring.gpg"
    assert (
        subprocess.run(
            ["gpgv", "--keyring", str(keyring), str(inrelease)], capture_output=True, check=False
        ).returncode
        == 0
    )
    packages = (home / "repository" / "dists" / "bastion" / "main" / "binary-amd64" / "Packages").read_text()
    assert "Package: zlib1g\n" in packages and "Version: 1:1.2.13.dfsg-1+bastion1\n" in packages
