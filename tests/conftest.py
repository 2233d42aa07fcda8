"""Shared fixtures: a cached BASTION_HOME for tests that use the host's package mirror, local HTTP
servers serving real repository files, and a throwaway OpenPGP key for repositories we sign."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
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


def run_cli(*args: str, home: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """Run the real ``bastion`` command in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    full_env.update({"BASTION_HOME": str(home), "COLUMNS": "200", **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=900,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


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
