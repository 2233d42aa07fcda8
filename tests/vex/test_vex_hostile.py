"""A hostile ``--vex`` document is refused through the real `bastion cves` command with
exit 2 naming the file, before any scan, never an internal error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("document", "message"),
    [
        # json.loads raised RecursionError on this (exit 3).
        (b'{"statements": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests deeper than 64 levels"),
        (b'{"statements": [' + b"[" * 70 + b"]" * 70 + b"]}", "nests deeper than 64 levels"),
        (b"\xff\xfe not text", "not UTF-8 text"),
        (b'{"statements": [', "not valid JSON"),
    ],
    ids=["deep", "past-the-limit", "binary", "truncated"],
)
def test_hostile_vex_documents_are_refused(tmp_path: Path, document: bytes, message: str) -> None:
    vex = tmp_path / "hostile.vex.json"
    vex.write_bytes(document)
    started = time.monotonic()
    result = run_cli("cves", "sbom://nothing.spdx.json", "--vex", str(vex), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert f"{vex}: " in result.stderr and message in result.stderr
    assert "internal error" not in result.stderr
    assert time.monotonic() - started < 30
