"""Every link of the trust chain, attacked byte by byte
over a real HTTP server on loopback, through the real ``bastion`` command. Each must be refused with
one clear line, exit code 2, and nothing added to the cache."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SigningKey, run_cli, serve_directory
from tests.supply.repo_slice import real_slice, signed_slice

pytestmark = pytest.mark.mirror


def _definition(
    path: Path, uri: str, packages: list[str], *, keyring: Path | None = None, extra: str = ""
) -> Path:
    ring = f"  keyring: {keyring}\n" if keyring else ""
    path.write_text(
        "name: tamper\n"
        "platforms: [linux/amd64]\n"
        "contents:\n"
        "  repositories:\n"
        f"    - uri: {uri}\n"
        "      suites: [bookworm]\n"
        "      components: [main]\n"
        f"{ring}{extra}"
        f"  packages: [{', '.join(packages)}]\n"
    )
    return path


def _cached_blobs(home: Path) -> set[str]:
    """Names of the verified files in the content-addressed cache."""
    return {p.name for p in (home / "cache" / "sha256").glob("*/*") if not p.name.startswith(".tmp-")}


def _cache_listing(home: Path) -> set[str]:
    cache = home / "cache"
    return {str(p.relative_to(cache)) for p in cache.rglob("*")} if cache.exists() else set()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Path:
    return real_slice(tmp_path_factory.mktemp("slice"), cached_home)


@pytest.fixture
def mirror(tmp_path: Path, pristine: Path) -> Path:
    """A private copy of the real slice for one test to damage."""
    copy = tmp_path / "mirror" / "debian"
    shutil.copytree(pristine, copy)
    return copy


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _expect_refused(result: object, *words: str) -> None:
    assert result.code == 2, (result.code, result.stdout, result.stderr)  # type: ignore[attr-defined]
    # Progress notes may precede it; the diagnosis itself is one line.
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert result.stderr.rstrip().endswith(lines[0]), result.stderr  # type: ignore[attr-defined]
    for word in words:
        assert word in lines[0], lines[0]


def test_untouched_slice_is_accepted(tmp_path: Path, mirror: Path) -> None:
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        definition = _definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase", "media-types"])
        result = run_cli("fetch", str(definition), home=home)
    assert result.code == 0, result.stderr
    assert "netbase" in result.stdout and "media-types" in result.stdout


def test_flipped_byte_in_inrelease_is_refused(tmp_path: Path, mirror: Path) -> None:
    inrelease = mirror / "dists" / "bookworm" / "InRelease"
    _flip(inrelease, inrelease.read_bytes().index(b"Codename: bookworm") + 11)
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        result = run_cli(
            "fetch", str(_definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase"])), home=home
        )
    _expect_refused(result, "InRelease", "BAD")
    assert _cache_listing(home) == set()


def test_flipped_byte_in_packages_index_is_refused(tmp_path: Path, mirror: Path) -> None:
    (index,) = (mirror / "dists" / "bookworm" / "main" / "binary-amd64" / "by-hash" / "SHA256").iterdir()
    _flip(index, 4096)
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        result = run_cli(
            "fetch", str(_definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase"])), home=home
        )
    _expect_refused(result, "Packages", "SHA256")
    assert _cached_blobs(home) == set()


def test_flipped_byte_in_deb_is_refused(tmp_path: Path, mirror: Path) -> None:
    (deb,) = mirror.glob("pool/main/n/netbase/*.deb")
    _flip(deb, deb.stat().st_size // 2)
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        result = run_cli(
            "fetch", str(_definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase"])), home=home
        )
    _expect_refused(result, "netbase", "SHA256")
    # The verified index is cached; the damaged package is not, and no temporary file is left.
    (index,) = (mirror / "dists" / "bookworm" / "main" / "binary-amd64" / "by-hash" / "SHA256").iterdir()
    assert _cached_blobs(home) == {index.name}
    assert not any(".tmp-" in p for p in _cache_listing(home))


def test_release_signed_by_unknown_key_is_refused(tmp_path: Path, mirror: Path, test_key: SigningKey) -> None:
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        definition = _definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase"], keyring=test_key.keyring)
        result = run_cli("fetch", str(definition), home=home)
    _expect_refused(result, "InRelease", "not in", str(test_key.keyring))
    assert _cache_listing(home) == set()


def test_expired_valid_until_is_refused_and_override_is_loud(
    tmp_path: Path, test_key: SigningKey, mirror: Path
) -> None:
    (deb,) = mirror.glob("pool/main/n/netbase/*.deb")
    now = datetime.now(UTC)
    repo = signed_slice(
        tmp_path,
        test_key.clearsign,
        [deb],
        date=now - timedelta(days=30),
        valid_until=now - timedelta(days=1),
    )
    home = tmp_path / "home"
    with serve_directory(repo.parent) as base:
        definition = _definition(tmp_path / "d.yaml", f"{base}/repo", ["netbase"], keyring=test_key.keyring)
        result = run_cli("fetch", str(definition), home=home)
        _expect_refused(result, "expired", "Valid-Until")
        assert _cache_listing(home) == set()
        override = _definition(
            tmp_path / "o.yaml",
            f"{base}/repo",
            ["netbase"],
            keyring=test_key.keyring,
            extra="  allow-expired: true\n",
        )
        accepted = run_cli("fetch", str(override), home=home)
    assert accepted.code == 0, accepted.stderr
    assert (
        "warning" in accepted.stderr and "expired" in accepted.stderr and "allow-expired" in accepted.stderr
    )


def test_missing_package_is_refused(tmp_path: Path, mirror: Path) -> None:
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        result = run_cli(
            "fetch", str(_definition(tmp_path / "d.yaml", f"{base}/debian", ["no-such-package"])), home=home
        )
    _expect_refused(result, "no-such-package", "not available")


def test_unsatisfiable_constraint_is_refused(tmp_path: Path, mirror: Path) -> None:
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        result = run_cli(
            "fetch", str(_definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase=99.0"])), home=home
        )
    _expect_refused(result, "netbase (= 99.0)", "versions 6.4")


def _traversal_deb(workdir: Path) -> Path:
    """A .deb whose data.tar holds ``./../../escaped``, built with ar and GNU tar as an attacker would."""
    (workdir / "control").mkdir(parents=True)
    (workdir / "control" / "control").write_text(
        "Package: evil\nVersion: 1.0\nArchitecture: all\nMaintainer: Nobody <nobody@example.invalid>\n"
        "Description: escapes the root\n"
    )
    (workdir / "payload").mkdir()
    (workdir / "payload" / "escaped").write_text("pwned\n")
    subprocess.run(
        ["tar", "-C", str(workdir / "control"), "-czf", str(workdir / "control.tar.gz"), "./control"],
        check=True,
    )
    subprocess.run(
        ["tar", "-C", str(workdir / "payload"), "--transform", "s,^\\./escaped,./../../escaped,", "-czf",
         str(workdir / "data.tar.gz"), "./escaped"],
        check=True,
    )  # fmt: skip
    (workdir / "debian-binary").write_text("2.0\n")
    deb = workdir / "evil_1.0_all.deb"
    subprocess.run(
        ["ar", "rc", str(deb), "debian-binary", "control.tar.gz", "data.tar.gz"], cwd=workdir, check=True
    )
    return deb


def test_deb_with_path_traversal_is_refused_before_caching(tmp_path: Path, test_key: SigningKey) -> None:
    deb = _traversal_deb(tmp_path / "build")
    repo = signed_slice(tmp_path, test_key.clearsign, [deb])
    home = tmp_path / "home"
    with serve_directory(repo.parent) as base:
        definition = _definition(tmp_path / "d.yaml", f"{base}/repo", ["evil"], keyring=test_key.keyring)
        result = run_cli("fetch", str(definition), home=home)
    _expect_refused(result, "evil", "..")
    index = repo / "dists" / "bookworm" / "main" / "binary-amd64" / "Packages.xz"
    assert _cached_blobs(home) == {hashlib.sha256(index.read_bytes()).hexdigest()}
    assert not (tmp_path.parent / "escaped").exists()


def test_locked_fetch_with_warm_cache_needs_no_network(tmp_path: Path, mirror: Path) -> None:
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        definition = _definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase", "media-types"])
        assert run_cli("lock", str(definition), home=home).code == 0
        assert run_cli("fetch", str(definition), "--locked", home=home).code == 0
    # The server is gone: every URL in the lock now fails to connect, so only the cache can answer.
    result = run_cli("fetch", str(definition), "--locked", "--format", "json", home=home)
    assert result.code == 0, result.stderr
    assert {row["name"] for row in json.loads(result.stdout)} == {"netbase", "media-types"}


def test_locked_refuses_a_changed_definition(tmp_path: Path, mirror: Path) -> None:
    home = tmp_path / "home"
    with serve_directory(mirror.parent) as base:
        definition = _definition(tmp_path / "d.yaml", f"{base}/debian", ["netbase"])
        assert run_cli("lock", str(definition), home=home).code == 0
        _definition(definition, f"{base}/debian", ["netbase", "media-types"])
        result = run_cli("fetch", str(definition), "--locked", home=home)
    _expect_refused(result, "definition changed since the lock was written")
