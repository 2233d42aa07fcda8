"""``builds:`` and ``artifacts:`` in a definition: refused at file:line with the field, before anything
is fetched or run (no mirror, no sandbox needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import run_cli

STEP = """name: hello
builds:
  - name: hello
    version: "1.0"
    source:
{source}
    commands: [make]
    outputs: [{{path: {output}, to: /usr/local/bin/hello}}]
"""
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("source", "output", "expected"),
    [
        ("      url: http://127.0.0.1:1/h.tar.gz", "hello", ":5: builds[0].source: a url needs sha256"),
        ("      url: http://127.0.0.1:1/h.tar.gz\n      sha256: abc", "hello", ":7: builds[0].source.sha256:"),
        (f"      url: file:///etc/passwd\n      sha256: {SHA}", "hello", ":6: builds[0].source.url:"),
        (f"      url: http://127.0.0.1:1/h.tar.gz\n      sha256: {SHA}", "../../etc/shadow", "builds[0].outputs[0].path:"),
        ("      url: http://127.0.0.1:1/h.tar.gz\n      signature: http://127.0.0.1:1/h.sig", "hello",
         "signature and keyring go together"),
        (f"      debian: {{source: zlib}}\n      sha256: {SHA}", "hello", "debian takes the tarball"),
    ],
)  # fmt: skip
def test_bad_build_steps_are_refused_at_their_line(
    tmp_path: Path, source: str, output: str, expected: str
) -> None:
    definition = tmp_path / "hello.yaml"
    definition.write_text(STEP.format(source=source, output=output))
    result = run_cli("build", str(definition), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(definition) in line and expected in line, line


def test_an_artifact_must_be_pinned_by_digest(tmp_path: Path) -> None:
    definition = tmp_path / "tools.yaml"
    definition.write_text("name: tools\nartifacts:\n  - name: t\n    image: oci-dir:///srv/tools:latest\n"
                          "    files: [{path: /usr/bin/tool}]\n")  # fmt: skip
    result = run_cli("build", str(definition), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert ":4: artifacts[0].image:" in result.stderr and "pinned by digest" in result.stderr
