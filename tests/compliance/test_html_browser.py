"""Issue 7, "Shown when done": the HTML report opens in headless Chromium with the counts visible.

Chromium renders the report to a DOM (the counts must be in it, as laid out) and to a screenshot
(which must be a real picture: the right size, and not one colour). The test command installs
Debian's chromium; without it this test fails under CI and is skipped on a developer machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.compliance.crafted import clean_image
from tests.conftest import run_cli

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test installs Debian's chromium)")
        pytest.skip("chromium is not installed (scripts/test installs it)")
    return found


def _png_rows(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct scanlines of an 8-bit RGB(A) PNG (PNG spec §11-12)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6)
    chunks, at = b"", 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks += data[at + 8 : at + 8 + length]
        at += 12 + length
    raw = zlib.decompress(chunks)
    stride = width * (3 if colour == 2 else 4) + 1
    return width, height, {raw[i * stride + 1 : (i + 1) * stride] for i in range(height)}


def test_html_report_renders_with_the_counts(tmp_path: Path) -> None:
    chromium = _chromium()
    image = clean_image(tmp_path / "rootfs")
    (image.root / "srv/open").write_text("x")
    (image.root / "srv/open").chmod(0o666)  # one planted failure, so fail is not zero
    home = tmp_path / "home"
    report = tmp_path / "report.html"
    summary = run_cli("compliance", f"fs://{image.root}", "--format", "json", home=home)
    assert summary.code == 0, summary.stderr
    counts = json.loads(summary.stdout)["summary"]["counts"]
    assert counts["fail"] >= 1
    assert (
        run_cli("compliance", f"fs://{image.root}", "--format", "html", "-o", str(report), home=home).code
        == 0
    )
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium, *_FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    for word in ("pass", "fail", "notapplicable"):
        shown = re.search(rf'id="count-{word}"[^>]*>\s*<span class="n">(\d+)</span>', dom)
        assert shown is not None, word
        assert int(shown.group(1)) == counts[word], word
    png = tmp_path / "report.png"
    subprocess.run(
        [chromium, *_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,1600",
         report.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    width, height, rows = _png_rows(png.read_bytes())
    assert (width, height) == (1280, 1600)
    assert len(rows) > 50  # text, tables and coloured count boxes, not a blank page
