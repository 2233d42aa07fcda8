"""Shared fixtures: a cached BASTION_HOME for tests that use the host's package mirror, local HTTP
servers serving real repository files, and a throwaway OpenPGP key for repositories we sign."""

from __future__ import annotations

import functools
import http.server
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Library calls made in this process validate as the `bastion` command does: without jsonschema's
# optional IRI format checks, unless BASTION_STRICT_IRI=1 (bastion.cli main, README Environment).
if os.environ.get("BASTION_STRICT_IRI") != "1":
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
# Real public data the tests use, kept in the repository (origin and licence: tests/data/README.md).
TEST_DATA = REPO_ROOT / "tests" / "data"


def mirror_home() -> Path:
    """A BASTION_HOME kept across test runs, so the mirror is downloaded from once (the
    integration tests may use the host's mirror, with a cache)."""
    home = Path(os.environ.get("BASTION_TEST_HOME", REPO_ROOT / ".cache" / "test-home"))
    home.mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture(scope="session")
def cached_home() -> Path:
    return mirror_home()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    seconds: float = 0.0
    max_rss_kib: int = 0
    """Peak resident memory of the command (getrusage(2) ru_maxrss of the child, in KiB)."""


def run_cli(*args: str, home: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """Run the real ``bastion`` command in a subprocess, as a user would; its time and peak memory are
    kept with the result, and appended to ``BASTION_TEST_RECORD`` (JSON lines) when that is set, so that
    ``benchmarks/hostile.py`` can report what each refused input cost."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    full_env.update({"BASTION_HOME": str(home), "COLUMNS": "200", **(env or {})})
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "bastion", *args], stdout=out, stderr=err, env=full_env,
                                cwd=cwd, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            _, status, usage = _wait4(proc.pid, timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = CliResult(
            proc.returncode,
            out.read().decode("utf-8", errors="replace"),
            err.read().decode("utf-8", errors="replace"),
            time.monotonic() - started,
            usage.ru_maxrss,
        )
    if record := os.environ.get("BASTION_TEST_RECORD"):
        entry = {"test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0], "args": list(args)[:3],
                 "code": result.code, "seconds": round(result.seconds, 3), "max_rss_kib": result.max_rss_kib}  # fmt: skip
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    return result


def _wait4(pid: int, *, timeout: float) -> tuple[int, int, resource.struct_rusage]:
    """os.wait4 with a deadline (polled: wait4 itself has none)."""
    deadline = time.monotonic() + timeout
    while True:
        found, status, usage = os.wait4(pid, os.WNOHANG)
        if found:
            return found, status, usage
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired([str(pid)], timeout)
        time.sleep(0.005)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class SigningKey:
    gnupghome: Path
    keyring: Path  # binary keyring for gpgv
    fingerprint: str

    def clearsign(self, text: bytes) -> bytes:
        proc = subprocess.run(
            ["gpg", "--homedir", str(self.gnupghome), "--batch", "--yes", "--digest-algo", "SHA256",
             "--local-user", self.fingerprint, "--clearsign"],
            input=text, capture_output=True, check=True,
        )  # fmt: skip
        return proc.stdout


@pytest.fixture(scope="session")
def test_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed (the README's test command installs gnupg)")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--quick-gen-key",
         "Bastion Test Repository <test@example.invalid>", "ed25519", "sign", "1d"],
        capture_output=True, check=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-keys"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    keyring = home / "test-keyring.gpg"
    exported = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--export", fingerprint], capture_output=True, check=True
    ).stdout
    keyring.write_bytes(exported)
    return SigningKey(home, keyring, fingerprint)


def catalog_copy(name: str, tmp: Path) -> Path:
    """A copy of ``catalog/<name>/<name>.yaml`` and its lock under ``tmp``, for tests that edit or
    build it without touching the repository."""
    definition = tmp / name / f"{name}.yaml"
    definition.parent.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "catalog" / name / f"{name}.yaml", definition)
    shutil.copyfile(REPO_ROOT / "catalog" / name / f"{name}.lock.json", definition.with_suffix(".lock.json"))
    return definition


def home_sharing_cache(tmp: Path, cached_home: Path) -> Path:
    """A fresh BASTION_HOME (empty store, no keys) whose package cache is the session's warm one."""
    home = tmp / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    return home
