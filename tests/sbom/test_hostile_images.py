"""Crafted images that `bastion sbom` must refuse with a clear exit 2 (or scan as usual) in
bounded time, never an internal error (exit 3) or hours of work. Each runs the real command."""

from __future__ import annotations

import io
import struct
import time
import zipfile
from pathlib import Path

import pytest
from tests.conftest import run_cli
from tests.image.layouts import E, oci_dir

REFERENCE = "test/image:1"


def _sbom(tmp_path: Path, layers: list[list[E]]) -> tuple[int, str, float, str]:
    layout = tmp_path / "layout"
    oci_dir(layout, layers, tag=REFERENCE)
    home = tmp_path / "home"
    started = time.monotonic()
    result = run_cli("sbom", f"oci-dir://{layout}:{REFERENCE}", home=home)
    elapsed = time.monotonic() - started
    assert "internal error" not in result.stderr, result.stderr
    # Whatever the outcome, the scan's spool directory is gone.
    assert not list((home / "work").glob("scan-*"))
    return result.code, result.stderr, elapsed, result.stdout


def overlapping_jar(entries: int, member_size: int) -> bytes:
    """A jar whose central directory lists ``entries`` copies of one entry: every one points at the
    same deflated ``member_size`` bytes (a nested jar, as far as its name says)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("WEB-INF/lib/inner.jar", bytes(member_size))
    data = out.getvalue()
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    records = data[cd_offset : cd_offset + cd_size] * entries
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, entries, entries, len(records), cd_offset, 0)
    return data[:cd_offset] + records + end


def test_zip_entries_sharing_one_member_are_refused(tmp_path: Path) -> None:
    # ~150 KB: 2,000 entries x 32 MiB each; read one by one that was ~1,000 s of inflating.
    jar = overlapping_jar(2_000, 32 * 1024 * 1024)
    code, stderr, elapsed, _ = _sbom(tmp_path, [[E("opt/app.war", data=jar)]])
    assert code == 2, stderr
    assert "/opt/app.war" in stderr and "overlap" in stderr
    assert elapsed < 60


@pytest.mark.slow
def test_nested_jars_decompressing_past_the_budget_are_refused(tmp_path: Path) -> None:
    # Distinct entries (no overlap), each under the nested-jar size limit: 11 x 48 MiB is more than
    # the 512 MiB one archive may decompress to.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for index in range(11):
            zf.writestr(f"BOOT-INF/lib/lib{index}.jar", bytes(48 * 1024 * 1024))
    code, stderr, elapsed, _ = _sbom(tmp_path, [[E("app.jar", data=out.getvalue())]])
    assert code == 2, stderr
    assert "/app.jar" in stderr and "more than 536,870,912 bytes" in stderr
    assert elapsed < 120


def test_a_whiteout_naming_no_file_is_refused(tmp_path: Path) -> None:
    # "./.wh." would white out its own directory: the root.
    layers = [[E("etc/passwd", data=b"root\n")], [E("./", "dir", mode=0o755), E("./.wh."), E("etc/x")]]
    code, stderr, _, _ = _sbom(tmp_path, layers)
    assert code == 2, stderr
    assert "layer 1" in stderr and "whiteout './.wh.' names no file" in stderr


def test_node_modules_nested_past_path_max_are_refused(tmp_path: Path) -> None:
    # A package at each of 1,500 levels: paths of ~20 KB, and minutes of work before the bound.
    entries, path = [], ""
    for index in range(1_500):
        path += f"node_modules/a{index}/"
        entries.append(E(path + "package.json", data=b'{"name": "a%d", "version": "1.0.0"}' % index))
    code, stderr, elapsed, _ = _sbom(tmp_path, [entries])
    assert code == 2, stderr
    assert "more than PATH_MAX (4095)" in stderr and "layer 0" in stderr
    assert elapsed < 60


def test_a_package_json_nested_thousands_deep_is_not_a_package(tmp_path: Path) -> None:
    layers = [
        [
            E("app/node_modules/evil/package.json", data=b"[" * 100_000),
            E("app/node_modules/good/package.json", data=b'{"name": "good", "version": "2.0.0"}'),
        ]
    ]
    code, stderr, elapsed, stdout = _sbom(tmp_path, layers)
    assert code == 0, stderr
    assert "good" in stdout and "evil" not in stdout
    assert elapsed < 60


def test_an_empty_package_name_in_the_dpkg_status_is_refused(tmp_path: Path) -> None:
    status = b"Package:\nStatus: install ok installed\nVersion: 1.0\n\n"
    code, stderr, _, _ = _sbom(tmp_path, [[E("var/lib/dpkg/status", data=status)]])
    assert code == 2, stderr
    assert "/var/lib/dpkg/status: paragraph 1: Package '' is not a package name" in stderr


def test_compare_of_versions_that_are_not_debian_versions_says_changed(tmp_path: Path) -> None:
    """``2.0:1`` (a colon with a non-numeric epoch) in an image's dpkg status made compare exit 3."""
    from tests.conftest import run_cli

    for name, version in (("a", "1.0:1"), ("b", "2.0:1")):
        status = tmp_path / name / "var/lib/dpkg/status"
        status.parent.mkdir(parents=True)
        status.write_text(
            f"Package: foo\nStatus: install ok installed\nVersion: {version}\nArchitecture: amd64\n\n"
        )
    result = run_cli("compare", f"fs://{tmp_path / 'a'}", f"fs://{tmp_path / 'b'}", home=tmp_path / "home")
    assert result.code == 0, result.stderr
    assert "1.0:1 -> 2.0:1 (changed)" in result.stdout
