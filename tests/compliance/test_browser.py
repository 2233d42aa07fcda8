"""The HTML report opens in headless Chromium with the counts visible.

Chromium (Debian package ``chromium``) renders the report of a crafted image with failed, waived and
not-applicable rules: the DOM it builds holds every count, and its screenshot is a real picture in
which the count boxes' colours appear. The PNG is decoded here with zlib and struct (PNG, RFC 2083 /
ISO 15948) so that the test needs no imaging library. Without Chromium the test is skipped, unless
``CI=true``: there the test command installs it, so its absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import html

from bastion.compliance import Result, compliance, summary, to_html
from bastion.compliance import apply_waivers as waive
from tests.compliance.crafted import clean_image

#: Background colours of the count boxes (``_html._CSS``): pass, fail, waived, score.
BOX_COLOURS = {"pass": (0xDF, 0xF3, 0xE4), "fail": (0xFB, 0xE1, 0xE1), "waived": (0xFD, 0xF1, 0xD6)}
WIDTH, HEIGHT = 1280, 2000


class _Waiver:
    rule = "image_healthcheck"
    reason = "probed from outside by the orchestrator"
    profile: str | None = None


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": the test command installs it under CI")
        pytest.skip(message)
    return found


def _run(chromium: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", *args],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip


def _png_rows(data: bytes) -> Iterator[bytes]:
    """The unfiltered scanlines of an 8-bit, non-interlaced RGB or RGBA PNG (ISO 15948 sections 7-9)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:  # Paeth
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + best) & 0xFF
        previous = line
        yield bytes(line[j] for j in range(stride) if channels == 3 or j % 4 != 3)  # drop alpha


def _colours(png: bytes, rows: int) -> tuple[tuple[int, int], set[tuple[int, int, int]]]:
    """(width, height) and the distinct colours of the first ``rows`` rows."""
    (width, height) = struct.unpack(">II", png[16:24])
    colours: set[tuple[int, int, int]] = set()
    for number, line in enumerate(_png_rows(png)):
        if number >= rows:
            break
        colours.update(zip(line[0::3], line[1::3], line[2::3], strict=True))
    return (width, height), colours


def _number_and_word(box: html.HtmlElement) -> tuple[str, str]:
    """A count box is ``<div><span class="n">39</span>pass</div>``."""
    (number,) = box.xpath("span[@class='n']")
    return (number.text or "").strip(), (number.tail or "").strip()


def test_the_html_report_opens_in_chromium_with_the_counts_visible(tmp_path: Path) -> None:
    chromium = _chromium()
    image = clean_image(tmp_path / "image")
    image.image_config.pop("Healthcheck")  # failed, then waived
    image.image_config["User"] = "0"  # failed
    image.write("/srv/open", "x", mode=0o666)  # failed
    with image.target() as target:
        result, _ = waive(compliance(target), [_Waiver()])
    counts = summary(result).counts
    assert counts["fail"] == 2 and counts["notapplicable"] > 0 and summary(result).waived == 1
    report = tmp_path / "report.html"
    report.write_bytes(to_html(result))

    dom = _run(chromium, tmp_path / "profile", "--dump-dom", report.as_uri()).stdout
    page = html.fromstring(dom)
    for word in ("pass", "fail", "notapplicable", "waived"):
        (box,) = page.xpath(f"//*[@id='count-{word}']")
        expected = summary(result).waived if word == "waived" else counts[word]
        assert _number_and_word(box) == (str(expected), word)
    (score,) = page.xpath("//*[@id='score']")
    assert _number_and_word(score) == (f"{result.score:.2f}", "score")
    assert result.count(Result.FAIL) == 2

    shot = tmp_path / "report.png"
    _run(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        report.as_uri(),
    )
    png = shot.read_bytes()
    assert len(png) > 20_000  # a page of text, not a blank
    # The counts sit near the top of the page: their boxes' colours are in the first 400 rows.
    size, colours = _colours(png, rows=400)
    assert size == (WIDTH, HEIGHT)
    assert len(colours) > 50  # text is anti-aliased: a rendered page has many shades
    missing = {word for word, colour in BOX_COLOURS.items() if colour not in colours}
    assert missing == set(), f"count boxes not drawn: {missing}"
