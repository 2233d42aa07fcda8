"""One platform type through the command line (issue 18 item 4): every spelling of a platform picks the
same image and builds the same definition entry, and text that is no platform is refused in one line
naming where it came from (the option, or the definition's file, line and field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import catalog_copy, run_cli
from tests.image.layouts import E, multi_platform

BASE = [E("etc/os-release", data=b"ID=debian\nVERSION_ID=12\n")]


@pytest.mark.parametrize("spelling", ["linux/arm64", "linux/arm64/v8", "linux/aarch64", "arm64"])
def test_every_spelling_of_arm64_scans_the_arm64_image(spelling: str, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    store = multi_platform(layout, [BASE], ["amd64", "arm64"], "multi/app:1")
    index = store.read_index(store.resolve("multi/app:1"))
    arm64 = next(d for d in index.manifests if d.platform is not None and d.platform.architecture == "arm64")
    result = run_cli("sbom", f"oci-dir://{layout}", "--platform", spelling, "--format", "spdx-json",
                     home=tmp_path / "h")  # fmt: skip
    assert result.code == 0, result.stderr
    assert arm64.digest.removeprefix("sha256:") in result.stdout and "platform linux/arm64" in result.stdout


@pytest.mark.parametrize(
    "command",
    [("sbom", "oci-dir://{layout}"), ("build", "{definition}"), ("packages", "{definition}", "--locked")],
)
def test_text_that_is_no_platform_is_refused_in_one_line(command: tuple[str, ...], tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    multi_platform(layout, [BASE], ["amd64"], "multi/app:1")
    definition = catalog_copy("static", tmp_path)
    args = [a.format(layout=layout, definition=definition) for a in command]
    result = run_cli(*args, "--platform", "linux/arm64/v8/x", home=tmp_path / "h")
    assert result.code == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "linux/arm64/v8/x" in line, line


@pytest.mark.parametrize(
    ("entry", "message"),
    [("linux/arm64/v8/x", "not a platform"), ("linux/sparc64", "not a Debian architecture")],
)
def test_a_definition_platform_that_is_none_is_refused_naming_file_line_and_field(
    entry: str, message: str, tmp_path: Path
) -> None:
    definition = tmp_path / "bad.yaml"
    definition.write_text(
        f"name: bad\nplatforms:\n  - linux/amd64\n  - {entry}\ncontents: {{packages: [base-files]}}\n"
    )
    result = run_cli("build", str(definition), home=tmp_path / "h")
    assert result.code == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and f"{definition}:4" in line and "platforms[1]" in line and message in line, line


def test_a_definitions_spellings_of_one_platform_are_one_platform(tmp_path: Path) -> None:
    """``linux/arm64/v8`` next to ``linux/arm64`` is the same platform twice, which a definition refuses."""
    definition = tmp_path / "twice.yaml"
    definition.write_text(
        "name: twice\nplatforms: [linux/arm64, linux/arm64/v8]\ncontents: {packages: [base-files]}\n"
    )
    result = run_cli("build", str(definition), home=tmp_path / "h")
    assert result.code == 2 and "duplicate platform 'linux/arm64'" in result.stderr, result.stderr
