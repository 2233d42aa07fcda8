"""The one place errors become exit codes: usage errors 2, input errors 2, success 0 (offline)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (["fetch"], ["fetch", "x.yaml", "--bogus"], ["build", "x.yaml", "--format", "xml"]):
        result = run_cli(*args, home=tmp_path)
        assert result.code == 2, (args, result.stderr)
        assert "internal error" not in result.stderr


def test_input_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("inspect", "nope:1", home=tmp_path)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: unknown image 'nope:1'")
    assert run_cli("build", str(tmp_path / "missing.yaml"), home=tmp_path).code == 2


def test_version_exits_0(tmp_path: Path) -> None:
    result = run_cli("--version", home=tmp_path)
    assert result.code == 0 and result.stdout.startswith("bastion ")
