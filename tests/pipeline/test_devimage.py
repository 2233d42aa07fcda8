"""Issue 17 items 5-7, "Shown when done", through ``bastion build`` of the python catalog definition.

The proofs are the definition's own image tests, run in the build's sandbox as the image user: in the
dev variant ``apt-get check`` is clean, ``python3 -m venv`` gives a venv with pip, and ``awk``,
``which``, ``grep`` and ``pager`` exist (update-alternatives' state agrees); in the runtime variant
``python3`` runs. A build passes only when all of them pass. Installing from the network
(``apt-get install gcc``) needs the mirror beyond loopback: the ``network`` test below.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]


@pytest.fixture(scope="module")
def python_images(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Path:
    """Both python variants for amd64, built --locked from the catalog's definition and lock."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed (apt-get install bubblewrap)")
    tmp = tmp_path_factory.mktemp("devimage")
    for name in ("python.yaml", "python.lock.json"):
        shutil.copyfile(REPO_ROOT / "catalog" / "python" / name, tmp / name)
    home = tmp / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    result = run_cli(
        "build", str(tmp / "python.yaml"), "--locked", "--platform", "linux/amd64", "--no-attest", home=home
    )
    assert result.code == 0, result.stderr
    return home


def _sbom_files(home: Path, image: str) -> dict[str, str]:
    result = run_cli("sbom", image, "--platform", "linux/amd64", "--format", "spdx-json", home=home)
    assert result.code == 0, result.stderr
    return {f["fileName"]: f.get("comment", "") for f in json.loads(result.stdout)["files"]}


def test_dev_image_tests_passed_and_its_generated_files_are_in_the_sbom(python_images: Path) -> None:
    files = _sbom_files(python_images, "bastion/python:3.11-dev")
    assert "mawk_" in files["./usr/bin/awk"] and "--auto mode" in files["./usr/bin/awk"]
    assert "debianutils_" in files["./etc/alternatives/which"]
    assert "./var/lib/dpkg/alternatives/pager" in files
    assert "keyring" in files["./etc/apt/sources.list.d/debian.sources"]


def test_runtime_has_python3_from_its_package(python_images: Path) -> None:
    result = run_cli(
        "sbom", "bastion/python:3.11", "--platform", "linux/amd64", "--format", "table", home=python_images
    )
    assert result.code == 0, result.stderr
    assert "python3-minimal" in result.stdout


def _rootfs(home: Path, image: str, dest: Path) -> Path:
    out = dest / "oci"
    assert (
        run_cli(
            "export", image, f"oci-dir://{out}:x", "--platform", "linux/amd64", "--no-attestations", home=home
        ).code
        == 0
    )
    index = json.loads((out / "index.json").read_text())
    manifest = json.loads((out / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    if "manifests" in manifest:
        manifest = json.loads((out / "blobs/sha256" / manifest["manifests"][0]["digest"][7:]).read_text())
    root = dest / "rootfs"
    root.mkdir()
    for layer in manifest["layers"]:
        blob = out / "blobs/sha256" / layer["digest"][7:]
        subprocess.run(["tar", "-xzf", str(blob), "-C", str(root)], check=True)
    return root


@pytest.mark.network
def test_apt_installs_gcc_from_the_mirror_the_image_was_built_from(
    python_images: Path, tmp_path: Path
) -> None:
    """The dev image's apt, with its own sources and keyring, fetches and installs gcc (run in bwrap
    over the exported tree, sharing the host's network; as root on the host, so dpkg can chown)."""
    root = _rootfs(python_images, "bastion/python:3.11-dev", tmp_path)
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    script = "apt-get update && apt-get install -y --no-install-recommends gcc && gcc --version"
    proc = subprocess.run(
        ["bwrap", "--bind", str(root), "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
         "--share-net", "--die-with-parent", "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
         "/bin/bash", "-c", script],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "gcc (Debian" in proc.stdout
