"""``bastion keygen`` through the real command line (a subprocess, as a user runs it)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bastion.attest import load_private_key, load_public_key
from tests.conftest import run_cli


def keys_in(directory: Path, prefix: str = "bastion") -> tuple[Path, Path]:
    return directory / f"{prefix}.key", directory / f"{prefix}.pub"


def test_keygen_defaults(tmp_path: Path) -> None:
    result = run_cli("keygen", home=tmp_path / "home", cwd=tmp_path, env={"BASTION_PASSWORD": "s3cret"})
    assert result.code == 0, result.stderr
    private, public = keys_in(tmp_path)
    assert result.stdout.strip() == "bastion.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    key = load_private_key(private, b"s3cret")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert load_public_key(public) == key.public_key()


def test_keygen_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    env = {"BASTION_PASSWORD": "one"}
    assert run_cli("keygen", home=tmp_path / "home", cwd=tmp_path, env=env).code == 0
    private, _ = keys_in(tmp_path)
    before = private.read_bytes()
    again = run_cli("keygen", home=tmp_path / "home", cwd=tmp_path, env=env)
    assert again.code == 2
    assert (
        "bastion.key: already exists: refusing to overwrite a key (use --force to replace it)" in again.stderr
    )
    assert private.read_bytes() == before
    forced = run_cli(
        "keygen", "--force", home=tmp_path / "home", cwd=tmp_path, env={"BASTION_PASSWORD": "two"}
    )
    assert forced.code == 0, forced.stderr
    assert private.read_bytes() != before
    load_private_key(private, b"two")


def test_keygen_prefix_kind_and_cosign_password(tmp_path: Path) -> None:
    prefix = tmp_path / "keys" / "release"
    prefix.parent.mkdir()
    result = run_cli(
        "keygen", "--output-key-prefix", str(prefix), "--kind", "ed25519",
        home=tmp_path / "home", env={"COSIGN_PASSWORD": "from-cosign"},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    private, public = keys_in(prefix.parent, "release")
    assert isinstance(load_private_key(private, b"from-cosign"), ed25519.Ed25519PrivateKey)
    assert isinstance(load_public_key(public), ed25519.Ed25519PublicKey)


def test_bastion_password_wins_over_cosign_password(tmp_path: Path) -> None:
    env = {"BASTION_PASSWORD": "bastion", "COSIGN_PASSWORD": "cosign"}
    assert run_cli("keygen", home=tmp_path / "home", cwd=tmp_path, env=env).code == 0
    load_private_key(keys_in(tmp_path)[0], b"bastion")


def test_keygen_bad_kind_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(
        "keygen", "--kind", "rsa", home=tmp_path / "home", cwd=tmp_path, env={"BASTION_PASSWORD": "x"}
    )
    assert result.code == 2
    assert "'rsa' is not one of 'ecdsa-p256', 'ed25519'" in result.stderr
    assert not keys_in(tmp_path)[0].exists()


def test_keygen_without_password_or_terminal_fails_clearly(tmp_path: Path) -> None:
    # run_cli inherits the test runner's stdin; here stdin is explicitly not a terminal.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_") and k != "COSIGN_PASSWORD"}
    env["BASTION_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-m", "bastion", "keygen"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (
        "no password for the private key: stdin is not a terminal (set BASTION_PASSWORD or COSIGN_PASSWORD)"
        in (proc.stderr)
    )
    assert not list(tmp_path.glob("bastion.*"))


@pytest.mark.parametrize("password", ["", "pässwörd"])
def test_keygen_password_edge_cases(tmp_path: Path, password: str) -> None:
    assert (
        run_cli("keygen", home=tmp_path / "home", cwd=tmp_path, env={"BASTION_PASSWORD": password}).code == 0
    )
    load_private_key(keys_in(tmp_path)[0], password.encode())


def test_keygen_prompts_twice_on_a_terminal(tmp_path: Path) -> None:
    """No variable set but a terminal: the password is asked for, hidden, and confirmed."""
    import contextlib
    import pty
    import select
    import signal
    import termios
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_") and k != "COSIGN_PASSWORD"}
    env["BASTION_HOME"] = str(tmp_path / "home")
    # pty.fork gives the child the terminal as its controlling terminal, as a login shell would.
    pid, controller = pty.fork()
    if pid == 0:  # the child: become the bastion command
        try:
            os.chdir(tmp_path)
            os.execve(sys.executable, [sys.executable, "-m", "bastion", "keygen"], env)
        finally:
            os._exit(127)
    seen = b""

    def wait_for(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while marker not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([controller], [], [], left)[0]:
                pytest.fail(f"no {marker!r} on the terminal; it shows {seen!r}")
            try:
                seen += os.read(controller, 1024)
            except OSError:  # the child closed the terminal
                pytest.fail(f"no {marker!r} on the terminal; it shows {seen!r}")

    def type_hidden(text: bytes) -> None:
        # The prompt is printed before echo is switched off (and pending input flushed): type only then.
        deadline = time.monotonic() + 60
        while termios.tcgetattr(controller)[3] & termios.ECHO:
            if time.monotonic() > deadline:
                pytest.fail(f"echo never switched off; the terminal shows {seen!r}")
            time.sleep(0.02)
        os.write(controller, text)

    def exit_status() -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if select.select([controller], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    os.read(controller, 1024)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("keygen did not finish")

    try:
        wait_for(b"Password for the private key")
        type_hidden(b"typed on a tty\n")
        wait_for(b"Repeat for confirmation")
        type_hidden(b"typed on a tty\n")
        assert exit_status() == 0, seen
    finally:
        os.close(controller)
    assert b"typed on a tty" not in seen  # hidden input is not echoed
    load_private_key(keys_in(tmp_path)[0], b"typed on a tty")
