"""Packages unpacked once and kept by digest (bastion.pipeline._unpacked)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bastion.errors import IntegrityError
from bastion.pipeline._assemble import PackageInput
from bastion.pipeline._unpacked import unpack_all

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")


def _deb(tmp_path: Path, name: str = "demo") -> PackageInput:
    tree = tmp_path / "tree" / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: d\n"
    )
    (tree / "DEBIAN/conffiles").write_text("/etc/demo.conf\n")
    (tree / "etc").mkdir()
    (tree / "etc/demo.conf").write_text("setting = 1\n")
    (tree / "bin").mkdir()
    (tree / "bin/demo").write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    (tree / "bin/demo-link").symlink_to("demo")
    deb = tmp_path / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)  # fmt: skip
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    return PackageInput(name, "1.0", "all", name, "1.0", deb, digest)


def _contents(items: list) -> dict[str, tuple[str, bytes | str]]:  # type: ignore[type-arg]
    (item,) = items
    return {
        entry.path: (entry.kind, content.read() if content is not None else entry.linkname)
        for entry, content in item.entries
    }


def test_unpacked_once_then_read_without_the_archive(tmp_path: Path) -> None:
    package = _deb(tmp_path)
    cache = tmp_path / "unpacked"
    first = unpack_all([package], cache)
    contents = _contents(first)
    assert contents["usr/bin/demo"] == ("file", b"\x7fELF" + bytes(range(256)) * 40)  # /usr merged
    assert contents["usr/bin/demo-link"] == ("symlink", "demo")
    assert first[0].conffile_md5 == {"etc/demo.conf": hashlib.md5(b"setting = 1\n").hexdigest()}
    assert first[0].members["control"].startswith(b"Package: demo\n")
    place = cache / "v2" / package.sha256[:2] / package.sha256
    assert sorted(p.name for p in place.iterdir()) == ["data", "index.json"]
    assert not [p for p in place.parent.iterdir() if p.name.startswith(".tmp-")]
    # The second time the archive is not read at all: the key is the digest the lock verified.
    package.deb.write_bytes(b"not an archive any more")
    again = unpack_all([package], cache)
    assert _contents(again) == contents and again[0].members == first[0].members


@pytest.mark.parametrize(
    "damage",
    [
        lambda index: index.update(sha256="0" * 64),  # another package's entry
        lambda index: index.update(format=0),  # an older layout
        lambda index: index["entries"][-1].__setitem__(7, 1 << 40),  # a slice past the end of data
        lambda index: index.pop("members"),
        lambda index: index["entries"][0].__setitem__(0, "../../etc/passwd"),  # a path out of the root
        lambda index: index["entries"][0].__setitem__(1, "fifo"),
    ],
)
def test_a_damaged_entry_is_unpacked_again(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    package = _deb(tmp_path)
    cache = tmp_path / "unpacked"
    expected = _contents(unpack_all([package], cache))
    index_file = cache / "v2" / package.sha256[:2] / package.sha256 / "index.json"
    index = json.loads(index_file.read_text())
    index["entries"].sort(key=lambda row: row[1] != "file")  # a file last, for the slice damage
    damage(index)
    index_file.write_text(json.dumps(index))
    assert _contents(unpack_all([package], cache)) == expected  # unpacked again and replaced
    assert json.loads(index_file.read_text())["sha256"] == package.sha256
    assert not [p for p in index_file.parent.parent.iterdir() if p.name.startswith(".tmp-")]


def test_a_corrupt_archive_places_nothing(tmp_path: Path) -> None:
    package = _deb(tmp_path)
    data = bytearray(package.deb.read_bytes())
    data[-200:-100] = bytes(100)  # inside data.tar.xz
    package.deb.write_bytes(bytes(data))
    cache = tmp_path / "unpacked"
    with pytest.raises(IntegrityError):
        unpack_all([package], cache)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_what_a_killed_build_left_is_removed_once_it_is_old(tmp_path: Path) -> None:
    package = _deb(tmp_path)
    cache = tmp_path / "unpacked"
    parent = cache / "v2" / package.sha256[:2]
    old, young = parent / ".tmp-old", parent / ".tmp-young"
    for left in (old, young):
        (left / "partial").mkdir(parents=True)
        (left / "partial" / "data").write_bytes(b"x" * 1000)
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    unpack_all([package], cache)
    assert not old.exists()  # abandoned long ago
    assert young.exists()  # may belong to a build still running


def test_packages_are_unpacked_as_their_downloads_complete(tmp_path: Path) -> None:
    """A cold build unpacks each package while the others download (issue 19): the fetcher hands
    each file it put into the cache, and only those, to EarlyUnpack; assembly then finds every
    package unpacked, as unpack_all would have made it."""
    from bastion.cache import Cache, Download, Fetcher
    from bastion.pipeline._unpacked import EarlyUnpack

    packages = [_deb(tmp_path, name) for name in ("one", "two", "three")]
    unpacked = tmp_path / "unpacked"
    handed: list[str] = []
    items = [Download(p.deb.as_uri(), p.sha256, p.deb.stat().st_size, p.deb.name) for p in packages]
    with Fetcher(Cache(tmp_path / "cache")) as fetcher, EarlyUnpack(unpacked) as early:

        def on_fetched(path: Path, sha256: str) -> None:
            handed.append(sha256)
            early.submit(path, sha256)

        fetcher.on_fetched = on_fetched
        paths = fetcher.fetch_all(items[:2])
    assert sorted(handed) == sorted(p.sha256 for p in packages[:2])
    indexes = {p.sha256: unpacked / "v2" / p.sha256[:2] / p.sha256 / "index.json" for p in packages}
    made = {digest: index.stat().st_mtime_ns for digest, index in indexes.items() if index.exists()}
    assert sorted(made) == sorted(p.sha256 for p in packages[:2])
    with Fetcher(Cache(tmp_path / "cache"), on_fetched=lambda path, sha256: handed.append(sha256)) as fetcher:
        fetcher.fetch_all(items)  # two found in the cache: not handed again
    assert sorted(handed) == sorted(p.sha256 for p in packages)
    cached = [
        PackageInput(p.name, p.version, p.architecture, p.source, p.source_version, path, p.sha256)
        for p, path in zip(packages[:2], paths, strict=True)
    ]
    fresh = tmp_path / "fresh"
    assert [_contents([u]) for u in unpack_all(cached, unpacked)] == [
        _contents([u]) for u in unpack_all(cached, fresh)
    ]
    assert {digest: indexes[digest].stat().st_mtime_ns for digest in made} == made  # read, not made again


def test_a_package_early_unpacking_fails_on_is_reported_by_assembly(tmp_path: Path) -> None:
    """EarlyUnpack raises nothing; unpack_all unpacks the package again and reports the problem."""
    from bastion.pipeline._unpacked import EarlyUnpack

    package = _deb(tmp_path)
    wrong = "0" * 64
    with EarlyUnpack(tmp_path / "unpacked") as early:
        early.submit(package.deb, wrong)
    with pytest.raises(IntegrityError, match="the lock says 0000"):
        unpack_all(
            [PackageInput("demo", "1.0", "all", "demo", "1.0", package.deb, wrong)], tmp_path / "unpacked"
        )
