"""The one place errors become exit codes: usage errors 2, input errors 2, success 0, interrupted 130
(offline but for the one build marked mirror); messages and help as a user sees them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main

from bastion.cli._app import app
from tests.conftest import REPO_ROOT, catalog_copy, home_sharing_cache, run_cli


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


# Text from outside (paths, packages, servers) is never read as rich markup.
def test_brackets_in_a_diagnostic_are_shown_not_parsed(tmp_path: Path) -> None:
    odd = tmp_path / "certs[/etc/ssl/certs/ca-certificates.crt]" / "image.yaml"
    odd.parent.mkdir(parents=True)
    start = time.monotonic()
    result = run_cli("lock", str(odd), home=tmp_path / "home")
    assert time.monotonic() - start < 60
    assert result.code == 2, result.stderr
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and str(odd) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_brackets_in_package_data_reach_the_table_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: odd\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 1.0[/bold]-1\nMaintainer: X <x@example.org>\nDescription: [red]odd[/red]\n"
    )
    result = run_cli("sbom", f"fs://{root}", home=tmp_path / "home")
    assert result.code == 0, result.stderr
    assert "1.0[/bold]-1" in result.stdout


# Help is whole whatever the terminal (a pipe here, COLUMNS unset or narrow).
@pytest.mark.parametrize("columns", ["", "40"])
def test_help_names_every_option_in_full(tmp_path: Path, columns: str) -> None:
    command: Any = typer.main.get_command(app)
    get = command.commands["attest"].commands["get"]
    names = [name for param in get.params for name in param.opts if name.startswith("-")]
    assert {"--predicate-type", "--type", "--verify", "--key", "--format", "--ca-file"} <= set(names)
    # An empty COLUMNS is ignored by click and rich, as if unset; run_cli would otherwise set 200.
    result = run_cli("attest", "get", "--help", home=tmp_path, env={"COLUMNS": columns})
    assert result.code == 0, result.stderr
    words = set(re.findall(r"--?[a-z][a-z-]*", result.stdout))
    assert set(names) <= words, set(names) - words
    assert "…" not in result.stdout


# An interrupt ends the command with 130, as the README's table says.
def test_interrupt_exits_130(tmp_path: Path) -> None:
    assert "| 130 |" in (REPO_ROOT / "README.md").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["BASTION_HOME"] = str(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as server:  # a registry that never answers
        server.settimeout(60)
        port = server.getsockname()[1]
        # As from a terminal: a shell starts background jobs (this suite under `cmd &`) with SIGINT
        # ignored, and a process that inherits an ignored SIGINT keeps it ignored (POSIX), so the
        # command is started with SIGINT at its default, as a foreground job is.
        as_foreground = (
            "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
            "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", as_foreground, "-m", "bastion", "pull", f"127.0.0.1:{port}/x/y:1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            connection, _ = server.accept()  # the command is now waiting on the server
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
            connection.close()
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().endswith("bastion: interrupted")


# A key with a password and none given says so, and how to give one.
@pytest.mark.mirror
@pytest.mark.slow
def test_build_with_a_key_and_no_password_says_how_to_give_one(tmp_path: Path, cached_home: Path) -> None:
    definition = catalog_copy("static", tmp_path)
    home = home_sharing_cache(tmp_path, cached_home)
    prefix = tmp_path / "release"
    keygen = run_cli("keygen", "--output-key-prefix", str(prefix), home=home, env={"BASTION_PASSWORD": "pw"})
    assert keygen.code == 0, keygen.stderr
    key = str(prefix.with_suffix(".key"))
    start = time.monotonic()
    result = run_cli("build", str(definition), "--locked", "--key", key, home=home)
    assert time.monotonic() - start < 300
    assert result.code == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: {key}: no password was given for the encrypted private key "
        "(set BASTION_PASSWORD or COSIGN_PASSWORD to its password)"
    )
    wrong = run_cli(
        "build", str(definition), "--locked", "--key", key, home=home, env={"BASTION_PASSWORD": "no"}
    )
    assert wrong.code == 2 and "wrong password for the private key" in wrong.stderr
