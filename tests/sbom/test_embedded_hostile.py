"""The embedded SBOM is read from the image, so it is input like any other: a copy that is not a
bounded JSON document is not used, and the scan goes on (issue 19: every path that reads an SBOM)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.conftest import run_cli

EMBEDDED = "usr/share/bastion/sbom.spdx.json"


@pytest.mark.parametrize(
    "content",
    [b"[" * 200_000 + b"]" * 200_000, b'{"spdxVersion": "SPDX-2.3", "packages": [', b"\xff\xfe not utf-8"],
    ids=["nested-200000-deep", "truncated", "not-utf8"],
)
def test_a_hostile_embedded_sbom_is_ignored(tmp_path: Path, content: bytes) -> None:
    root = tmp_path / "root"
    (root / EMBEDDED).parent.mkdir(parents=True)
    (root / EMBEDDED).write_bytes(content)
    started = time.monotonic()
    result = run_cli("sbom", f"fs://{root}", "--format", "spdx-json", home=tmp_path / "home")
    assert result.code == 0, result.stderr
    assert '"spdxVersion"' in result.stdout
    assert time.monotonic() - started < 60
