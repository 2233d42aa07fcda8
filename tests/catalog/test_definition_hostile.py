"""A definition built to crash or hang the YAML loader is refused through the real
`bastion lock` command with exit 2 and the file's line, before anything is resolved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.conftest import run_cli

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # PyYAML's composer recursed once per level: 5,000 "[" were a RecursionError (exit 3).
        (
            "name: x\npackages: " + "[" * 5_000 + "\n",
            "definition.yaml:2: the YAML nests deeper than 64 levels",
        ),
        (
            "name: x\npackages:\n" + "  - " * 1 + "{a: " * 3_000 + "\n",
            "definition.yaml:3: the YAML nests deeper",
        ),
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n" + BOMB + "name: x\n",
            "the YAML expands to more than 100,000 nodes",
        ),
    ],
    ids=["flow-sequences", "flow-mappings", "alias-bomb"],
)
def test_hostile_definition_yaml_is_refused(tmp_path: Path, text: str, message: str) -> None:
    definition = tmp_path / "definition.yaml"
    definition.write_text(text)
    started = time.monotonic()
    result = run_cli("lock", str(definition), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert message in result.stderr and "internal error" not in result.stderr
    assert time.monotonic() - started < 30


def test_oversized_definition_is_refused_before_parsing(tmp_path: Path) -> None:
    # Read no more than the bound: a definition is written by hand, and a catalog holds thousands.
    definition = tmp_path / "definition.yaml"
    definition.write_text("name: x\n" + "# padding\n" * 110_000)
    result = run_cli("lock", str(definition), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert "definition.yaml: the file is larger than 1,048,576 bytes" in result.stderr


def test_yaml_libyaml_refuses_gets_the_reference_parsers_message(tmp_path: Path) -> None:
    # libyaml reads definitions when present; what it refuses is read again by PyYAML's own parser,
    # whose message (and file:line:col) is the one documented.
    definition = tmp_path / "definition.yaml"
    definition.write_text("name: x\ntags: [a, b\nplatforms: [linux/amd64]\n")
    result = run_cli("lock", str(definition), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert "definition.yaml:3:10: YAML syntax error: expected ',' or ']', but got ':'" in result.stderr
