"""``-o`` (and an export's archive file) never replaces what is not a regular file.

Renaming a temp file over ``-o /dev/null`` made the machine's /dev/null a regular file (as root, as
CI runs). Every kind of target goes through the real ``bastion`` command here: a regular file
(replaced whole, kept on an interrupted write), a new path, /dev/null, a FIFO, /dev/stdout and ``-``,
a directory, and a symbolic link.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.errors import ExitCode, InputError
from bastion.oci import LayerEntry, OutputFile, Platform, RuntimeConfig, Store, add_layer, put_image
from tests.conftest import CliResult, run_cli

EPOCH = 1_700_000_000
IMAGE_REF = "bastion/out:1"
PACKAGES = 40
# Generous bound for one command on a loaded machine; a hang (an unread FIFO, a prompt) fails it.
BOUND = 120.0


@dataclass(frozen=True)
class Setup:
    home: Path
    image: str  # fs://DIR with a dpkg status of PACKAGES packages


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    base = tmp_path_factory.mktemp("output")
    root = base / "rootfs"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (root / "var/lib/dpkg/status").write_text(
        "\n".join(
            f"Package: pkg{i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.{i}-1\n"
            f"Maintainer: X <x@example.org>\nDescription: package {i}\n"
            for i in range(PACKAGES)
        )
    )
    home = base / "home"
    record = {
        "id": "OSV-TEST-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "pkg1"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            }
        ],
    }
    (base / "osv.json").write_text(json.dumps(record))
    imported = run_cli("db", "import", str(base / "osv.json"), home=home)
    assert imported.code == 0, imported.stderr
    store = Store(home / "store")
    layer = add_layer(
        store,
        [
            LayerEntry("etc", "dir", 0o755, 0, 0, EPOCH),
            LayerEntry("etc/hello", "file", 0o644, 0, 0, EPOCH, data=b"hello\n" * 4000),
        ],
        source_date_epoch=EPOCH,
    )
    manifest = put_image(
        store,
        platform=Platform.parse("linux/amd64"),
        layers=[layer],
        runtime=RuntimeConfig(user="65532"),
        source_date_epoch=EPOCH,
    )
    store.tag(IMAGE_REF, manifest)
    return Setup(home, f"fs://{root}")


def _commands(setup: Setup, target: str) -> dict[str, list[str]]:
    """Every command that writes its data to a file the user names, writing to ``target``."""
    return {
        "sbom": ["sbom", setup.image, "--format", "spdx-json", "-o", target],
        "compliance": ["compliance", setup.image, "--format", "json", "-o", target],
        "cves": ["cves", setup.image, "--format", "json", "-o", target],
        "vex": ["vex", setup.image, "-o", target],
        "export": ["export", IMAGE_REF, f"docker-archive://{target}", "--platform", "linux/amd64"],
    }


def _all_packages(spdx: bytes) -> bool:
    return {f"pkg{i}" for i in range(PACKAGES)} <= {p["name"] for p in json.loads(spdx)["packages"]}


def _timed(setup: Setup, args: list[str], **kwargs: object) -> CliResult:
    start = time.monotonic()
    result = run_cli(*args, home=setup.home, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - start < BOUND
    assert result.code != ExitCode.INTERNAL, result.stderr
    return result


@contextmanager
def _dev_null_guard() -> Iterator[None]:
    """Fail (and repair) if /dev/null stops being the null device: the machine's other processes
    write to it."""
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null was already broken before the test"
    try:
        yield
    finally:
        if not stat.S_ISCHR(os.lstat("/dev/null").st_mode):
            if os.geteuid() == 0:
                os.unlink("/dev/null")
                os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
                os.chmod("/dev/null", 0o666)
            pytest.fail("/dev/null was replaced by a regular file")


@contextmanager
def _dev_stdout_guard() -> Iterator[None]:
    """Fail (and repair) if /dev/stdout stops being the link to the process's descriptor 1."""
    link = Path("/dev/stdout")
    assert link.is_symlink(), "/dev/stdout was already broken before the test"
    before = link.readlink()
    try:
        yield
    finally:
        if not link.is_symlink():
            if os.geteuid() == 0:
                link.unlink()
                link.symlink_to(before)
            pytest.fail("/dev/stdout was replaced by a regular file")


@pytest.mark.parametrize("command", ["sbom", "compliance", "cves", "vex", "export"])
def test_dev_null_stays_a_character_device(setup: Setup, command: str) -> None:
    with _dev_null_guard():
        result = _timed(setup, _commands(setup, "/dev/null")[command])
    assert result.code == 0, result.stderr
    if command != "export":  # export prints the digest
        assert result.stdout == ""
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("command", ["sbom", "export"])
def test_a_fifo_is_written_through_to_its_reader(setup: Setup, tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with fifo.open("rb") as f:  # blocks until the command opens it for writing
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        result = _timed(setup, _commands(setup, str(fifo))[command])
        reader.join(timeout=BOUND)
    finally:
        if reader.is_alive():  # the command never opened the FIFO: let the reader go
            with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass
            reader.join(timeout=10)
    assert result.code == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    assert received and received[0]
    if command == "sbom":
        assert _all_packages(received[0])
    else:
        assert received[0][257:262] == b"ustar"  # a tar archive


@pytest.mark.parametrize("target", ["/dev/stdout", "-"])
def test_stdout_by_name(setup: Setup, tmp_path: Path, target: str) -> None:
    for command in ("sbom", "cves"):
        with _dev_stdout_guard():
            result = _timed(setup, _commands(setup, target)[command], cwd=tmp_path)
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_a_directory_is_refused_with_exit_2(setup: Setup, tmp_path: Path) -> None:
    for command in ("sbom", "export"):
        result = _timed(setup, _commands(setup, str(tmp_path))[command])
        assert result.code == ExitCode.USAGE, result.stderr
        assert result.stderr.strip() == f"error: {tmp_path}: is a directory (give a file name)"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_an_input_error(setup: Setup, tmp_path: Path) -> None:
    result = _timed(setup, _commands(setup, str(tmp_path / "no/such/report.json"))["compliance"])
    assert result.code == ExitCode.USAGE
    assert "cannot create the output: No such file or directory" in result.stderr
    assert str(tmp_path / "no/such/report.json") in result.stderr


def test_a_symlink_keeps_pointing_at_its_replaced_target(setup: Setup, tmp_path: Path) -> None:
    target = tmp_path / "real" / "sbom.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    result = _timed(setup, _commands(setup, str(link))["sbom"])
    assert result.code == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    assert _all_packages(target.read_bytes())
    assert sorted(p.name for p in target.parent.iterdir()) == ["sbom.json"]  # no temp file left


def test_a_regular_file_is_replaced_whole_and_keeps_its_mode(setup: Setup, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text("old")
    report.chmod(0o600)
    result = _timed(setup, _commands(setup, str(report))["cves"])
    assert result.code == 0, result.stderr
    assert json.loads(report.read_bytes())["summary"]["findings"] == 1
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    fresh = tmp_path / "new.json"
    assert _timed(setup, _commands(setup, str(fresh))["vex"]).code == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "report.json"]


def test_an_interrupted_write_leaves_the_old_content(setup: Setup, tmp_path: Path) -> None:
    """The write is cut short by the file size limit (RLIMIT_FSIZE: EFBIG, as a full disk would):
    exit 2 naming the file, the old content intact, no temp file left beside it."""
    report = tmp_path / "sbom.json"
    report.write_bytes(b"old content\n")
    limit = 16 * 1024  # the SPDX document of PACKAGES packages is ~40 KiB

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_HOME": str(setup.home), "PYTHONDONTWRITEBYTECODE": "1"})
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bastion", *_commands(setup, str(report))["sbom"]],
        capture_output=True, text=True, env=env, preexec_fn=cap, timeout=BOUND, check=False,
    )  # fmt: skip
    assert time.monotonic() - start < BOUND
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert f"error: {report}: cannot write the output: File too large" in proc.stderr
    assert report.read_bytes() == b"old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sbom.json"]


def test_an_exception_while_writing_leaves_the_old_content(tmp_path: Path) -> None:
    report = tmp_path / "out.tar"
    report.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), OutputFile(report) as out:
        out.write(b"half of the new")
        raise KeyboardInterrupt
    assert report.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tar"]


def test_a_socket_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(InputError, match="not a regular file, character device or FIFO"):
            OutputFile(path)
