"""Issue 17, item 13: a build uses a lock that satisfies its definition and leaves the file as it is;
a lock is written only after a successful resolve and build; ``bastion lock --update`` refreshes it;
a lock naming files the mirror no longer serves says how to refresh it. All through the real
``bastion`` command against a repository signed with a throwaway key, served on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CliResult, SigningKey, run_cli, serve_directory
from tests.supply.repo_slice import signed_slice

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb to make packages")

# What one command may take here: a few small packages, no image tests but file checks.
BOUND = 90.0


def make_deb(out: Path, name: str, version: str, *, marker: str = "") -> Path:
    """A tiny ``Architecture: all`` package with one file, /usr/share/<name>/VERSION; made once, so
    publishing it again publishes the same bytes."""
    deb = out / "debs" / f"{name}{marker}" / f"{name}_{version}_all.deb"
    if deb.exists():
        return deb
    root = out / "debs" / f"{name}-{version}{marker}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Bastion Tests <t@example.invalid>\n"
        f"Description: lock test package\n"
    )
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "VERSION").write_text(f"{version}{marker}\n")
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
        env={"SOURCE_DATE_EPOCH": "1700000000", "PATH": "/usr/bin:/bin"},
    )
    return deb


@dataclass
class Mirror:
    """A signed repository on loopback whose contents a test replaces, as an archive moves on."""

    served: Path  # the served directory; the repository is served/repo
    base: str
    key: SigningKey
    work: Path

    def publish(self, *debs: Path) -> None:
        staging = self.work / f"staging-{time.monotonic_ns()}"
        staging.mkdir()
        repo = signed_slice(staging, self.key.clearsign, list(debs))
        shutil.rmtree(self.served / "repo", ignore_errors=True)
        repo.rename(self.served / "repo")


@pytest.fixture
def mirror(tmp_path: Path, test_key: SigningKey) -> Iterator[Mirror]:
    served = tmp_path / "served"
    served.mkdir()
    with serve_directory(served) as base:
        yield Mirror(served, base, test_key, tmp_path)


def definition(path: Path, mirror: Mirror, packages: list[str], *, extra: str = "") -> Path:
    path.write_text(
        "name: locktest\n"
        "platforms: [linux/amd64]\n"
        "contents:\n"
        "  repositories:\n"
        f"    - uri: {mirror.base}/repo\n"
        "      suites: [bookworm]\n"
        f"  keyring: {mirror.key.keyring}\n"
        f"  packages: [{', '.join(packages)}]\n"
        "compliance: {profiles: []}\n"
        f"{extra}"
    )
    return path


def bastion(*args: str, home: Path) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home)
    assert time.monotonic() - started < BOUND, args
    assert result.code != 3, result.stderr
    return result


def locked_versions(lock: Path) -> dict[str, str]:
    data = json.loads(lock.read_text())
    return {p["name"]: p["version"] for p in data["variants"]["runtime"]["linux/amd64"]["packages"]}


def error_line(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


BUILD = ("build", "--no-attest")


def test_build_with_a_satisfying_lock_leaves_it_byte_identical(tmp_path: Path, mirror: Mirror) -> None:
    home = tmp_path / "home"
    mirror.publish(make_deb(tmp_path, "hello", "1.0"))
    spec = definition(tmp_path / "d.yaml", mirror, ["hello"])
    assert bastion("lock", str(spec), home=home).code == 0
    lock = spec.with_name("d.lock.json")
    written = lock.read_bytes()
    # The archive moves on, and the definition changes in what does not choose packages.
    mirror.publish(make_deb(tmp_path, "hello", "1.0"), make_deb(tmp_path, "hello", "2.0"))
    definition(
        spec,
        mirror,
        ["hello"],
        extra="labels: {team: lock}\ntests: [{name: v, file: /usr/share/hello/VERSION, contains: '1.0'}]\n",
    )
    built = bastion(*BUILD, str(spec), home=home)
    assert built.code == 0, built.stderr
    assert lock.read_bytes() == written
    assert bastion(*BUILD, str(spec), "--locked", home=home).code == 0
    assert lock.read_bytes() == written


def test_a_new_package_is_resolved_and_written_or_refused_with_locked(tmp_path: Path, mirror: Mirror) -> None:
    home = tmp_path / "home"
    mirror.publish(make_deb(tmp_path, "hello", "1.0"))
    spec = definition(tmp_path / "d.yaml", mirror, ["hello"])
    assert bastion("lock", str(spec), home=home).code == 0
    lock = spec.with_name("d.lock.json")
    written = lock.read_bytes()
    mirror.publish(
        make_deb(tmp_path, "hello", "1.0"),
        make_deb(tmp_path, "hello", "2.0"),
        make_deb(tmp_path, "extra", "1.0"),
    )
    definition(spec, mirror, ["hello", "extra"])
    refused = bastion(*BUILD, str(spec), "--locked", home=home)
    assert refused.code == 2
    line = error_line(refused)
    assert "definition changed since the lock was written" in line and "+extra" in line, line
    assert f"bastion lock --update {spec}" in line, line
    assert lock.read_bytes() == written
    built = bastion(*BUILD, str(spec), home=home)
    assert built.code == 0, built.stderr
    assert "resolving" in built.stderr and "+extra" in built.stderr
    assert locked_versions(lock) == {"hello": "2.0", "extra": "1.0"}


def test_a_failed_build_writes_no_lock(tmp_path: Path, mirror: Mirror) -> None:
    home = tmp_path / "home"
    mirror.publish(make_deb(tmp_path, "hello", "1.0"))
    failing = "tests: [{name: wrong-version, file: /usr/share/hello/VERSION, contains: '9.9'}]\n"
    spec = definition(tmp_path / "d.yaml", mirror, ["hello"], extra=failing)
    lock = spec.with_name("d.lock.json")
    unknown = bastion(*BUILD, str(spec), "--platform", "linux/s390x", home=home)
    assert unknown.code == 2
    assert "linux/s390x" in error_line(unknown)
    assert not lock.exists()
    failed = bastion(*BUILD, str(spec), home=home)
    assert failed.code == 1, failed.stderr
    assert "wrong-version" in error_line(failed)
    assert not lock.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".d.lock.json")]
    definition(spec, mirror, ["hello"])
    assert bastion(*BUILD, str(spec), home=home).code == 0
    assert locked_versions(lock) == {"hello": "1.0"}


def test_lock_update_rewrites_what_lock_keeps(tmp_path: Path, mirror: Mirror) -> None:
    home = tmp_path / "home"
    mirror.publish(make_deb(tmp_path, "hello", "1.0"))
    spec = definition(tmp_path / "d.yaml", mirror, ["hello"])
    assert bastion("lock", str(spec), home=home).code == 0
    lock = spec.with_name("d.lock.json")
    written = lock.read_bytes()
    mirror.publish(make_deb(tmp_path, "hello", "1.0"), make_deb(tmp_path, "hello", "2.0"))
    kept = bastion("lock", str(spec), home=home)
    assert kept.code == 0 and "kept" in kept.stderr
    assert lock.read_bytes() == written
    updated = bastion("lock", "--update", str(spec), home=home)
    assert updated.code == 0, updated.stderr
    assert updated.stdout.strip() == str(lock)
    assert locked_versions(lock) == {"hello": "2.0"}


def test_an_index_listing_a_name_apart_and_a_damaged_parsed_cache_still_lock_the_highest(
    tmp_path: Path, mirror: Mirror
) -> None:
    """Issue 19: indices are parsed a chunk at a time into the parsed-index cache, grouped by name, so
    versions of one name listed apart in the Packages file are all candidates; a cache file that does
    not describe its records is parsed again, not trusted."""
    home = tmp_path / "home"
    mirror.publish(
        make_deb(tmp_path, "hello", "1.0"),
        make_deb(tmp_path, "extra", "1.0"),
        make_deb(tmp_path, "hello", "2.0"),
    )
    spec = definition(tmp_path / "d.yaml", mirror, ["hello", "extra"])
    assert bastion("lock", str(spec), home=home).code == 0
    lock = spec.with_name("d.lock.json")
    assert locked_versions(lock) == {"extra": "1.0", "hello": "2.0"}
    (cached,) = (home / "cache" / "indices").iterdir()
    header, records = cached.read_bytes().split(b"\n", 1)
    cached.write_bytes(header + b"\n" + records[:-10])  # records shorter than the header says
    again = bastion("lock", "--update", str(spec), home=home)
    assert again.code == 0, again.stderr
    assert locked_versions(lock) == {"extra": "1.0", "hello": "2.0"}
    assert cached.read_bytes().endswith(records)


@pytest.mark.parametrize("archive", ["dropped", "rebuilt"])
def test_a_locked_file_the_mirror_no_longer_serves_says_to_refresh(
    tmp_path: Path, mirror: Mirror, archive: str
) -> None:
    home = tmp_path / "home"
    mirror.publish(make_deb(tmp_path, "hello", "1.0"))
    spec = definition(tmp_path / "d.yaml", mirror, ["hello"])
    assert bastion("lock", str(spec), home=home).code == 0  # indices only: no package is in the cache
    lock = spec.with_name("d.lock.json")
    written = lock.read_bytes()
    if archive == "dropped":  # the pool keeps only the newer version
        mirror.publish(make_deb(tmp_path, "hello", "2.0"))
    else:  # the same file name now holds other bytes
        mirror.publish(make_deb(tmp_path, "hello", "1.0", marker="-rebuilt"))
    for args in [(*BUILD, str(spec)), (*BUILD, str(spec), "--locked")]:
        result = bastion(*args, home=home)
        assert result.code == 2, result.stderr
        line = error_line(result)
        assert "hello_1.0_all.deb" in line, line
        assert "no longer serve" in line and f"bastion lock --update {spec}" in line, line
        assert lock.read_bytes() == written
    assert bastion("lock", "--update", str(spec), home=home).code == 0
    assert bastion(*BUILD, str(spec), "--locked", home=home).code == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("{", "not valid JSON", id="truncated"),
        pytest.param("[" * 100_000 + "]" * 100_000, "deeper", id="deep"),
        pytest.param('{"lock-version": 1, "definition": {"path": "d.yaml", "sha256": "\\u001b[31mred"}}',
                     "definition.sha256", id="escape-in-digest"),
        pytest.param('{"lock-version": 7, "definition": {"path": "d.yaml", "sha256": "sha256:' + "0" * 64 + '"},'
                     ' "keyrings": [], "source-date-epoch": 0, "suites": [], "variants": {}}', "version 7",
                     id="future-version"),
        pytest.param('{"lock-version": 1, "definition": {"path": "d.yaml", "sha256": "sha256:' + "0" * 64 + '"},'
                     ' "resolved-from": {"runtime": {"packages": ["hello\\nerror: forged"], "repositories": null,'
                     ' "keyring": "k", "allow-expired": false}}}', "resolved-from.runtime.packages.0",
                     id="newline-in-package"),
    ],
)  # fmt: skip
def test_a_hostile_lock_file_is_refused(tmp_path: Path, text: str, words: str) -> None:
    spec = tmp_path / "d.yaml"
    spec.write_text("name: locktest\ncontents: {packages: [hello]}\n")
    lock = spec.with_name("d.lock.json")
    lock.write_text(text)
    for args in [("build", str(spec), "--locked"), ("packages", str(spec))]:
        result = bastion(*args, home=tmp_path / "home")
        assert result.code == 2, result.stderr
        line = error_line(result)
        assert str(lock) in line and words in line, line
        assert lock.read_text() == text
