"""The incumbent scanners as fixtures: ``syft`` and ``trivy`` are paths to binaries that
``scripts/scanners`` installed into ``.cache/scanners/bin``.

``scripts/test`` installs them before the tests (a setup step, like pip's), so the tests themselves
need no network. A test module marked ``network`` may download them (``scripts/scanners``), and a
failed install fails it: it was selected to use the network and must say what happened. Any other
module only checks that they are installed (``scripts/scanners --check``, no download) and, when they
are not, is skipped with the one-line reason, which says what to run.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCANNERS_DIR = REPO_ROOT / ".cache" / "scanners"
SCANNERS_BIN = SCANNERS_DIR / "bin"


@functools.cache
def _install(download: bool) -> dict[str, Path] | str:
    """The installed tools by name, or why there are none (the script's last line of stderr)."""
    check = [] if download else ["--check"]
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "scanners"), *check, str(SCANNERS_BIN)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return proc.stderr[-3000:] if download else (lines[-1] if lines else f"exit {proc.returncode}")
    tools = {line.split("\t")[0]: Path(line.split("\t")[1]) for line in proc.stdout.splitlines() if line}
    assert set(tools) == {"syft", "trivy"}, proc.stdout
    return tools


@pytest.fixture(scope="module")
def scanners_installed(request: pytest.FixtureRequest) -> dict[str, Path]:
    download = request.node.get_closest_marker("network") is not None
    tools = _install(download)
    if isinstance(tools, str):
        if download:
            pytest.fail(f"scripts/scanners could not install Syft and Trivy:\n{tools}")
        pytest.skip(f"Syft and Trivy are not installed: {tools.removeprefix('scripts/scanners: ')}")
    return tools


@pytest.fixture(scope="module")
def syft(scanners_installed: dict[str, Path]) -> Path:
    return scanners_installed["syft"]


@pytest.fixture(scope="module")
def trivy(scanners_installed: dict[str, Path]) -> Path:
    return scanners_installed["trivy"]
