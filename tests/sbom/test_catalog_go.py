"""The Go cataloger: a hand-made ELF with every modinfo line kind, a Go program from Debian (built
outside module mode), and esbuild from npm (built in module mode, with a dependency)."""

from __future__ import annotations

import re
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from bastion.config import Settings
from bastion.image import open_target
from bastion.sbom import PackageType, scan
from bastion.sbom._catalog import GoBinaryCataloger

START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")  # runtime/debug's modinfo sentinels
END = bytes.fromhex("f932433186182072008242104116d8f2")


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def go_elf(version: str, modinfo: str) -> bytes:
    """A little-endian ELF64 with a .shstrtab and a .go.buildinfo section in Go 1.18+ format."""
    info = START + modinfo.encode() + END
    buildinfo = b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16
    buildinfo += _uvarint(len(version)) + version.encode() + _uvarint(len(info)) + info
    names = b"\0.shstrtab\0.go.buildinfo\0"
    body = names + buildinfo
    shoff = 64 + len(body)
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, 64, len(names), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 11, 1, 3, 0, 64 + len(names), len(buildinfo), 0, 0, 16, 0),
    ]
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, len(sections), 1)
    return header + body + b"".join(sections)


MODINFO = (
    "path\texample.com/tool/cmd/tool\n"
    "mod\texample.com/tool\tv1.4.0\th1:abc=\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:ghi=\n"
    "=>\tgithub.com/fork/sys\tv0.1.1-fork\th1:jkl=\n"
    "build\t-compiler=gc\n"
)


def test_build_info_of_a_module_mode_binary(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(go_elf("go1.21.5", MODINFO))
    (root / "usr/bin/tool").chmod(0o755)
    # The same binary without an executable bit (a data file) is not looked at.
    (root / "usr/share/data").mkdir(parents=True)
    (root / "usr/share/data/tool.bin").write_bytes(go_elf("go1.22.0", MODINFO))
    (root / "usr/bin/not-go").write_bytes(b"\x7fELF" + b"\0" * 100)
    (root / "usr/bin/script").write_bytes(b"#!/bin/sh\n" * 20)
    with open_target(f"fs://{root}", Settings(tmp_path / "home")) as target:
        found = {p.purl: p for p in GoBinaryCataloger().catalog(target)}
    assert set(found) == {
        "pkg:golang/example.com/tool@v1.4.0",
        "pkg:golang/github.com/pkg/errors@v0.9.1",
        "pkg:golang/github.com/fork/sys@v0.1.1-fork",  # the replacement is what was built
        "pkg:golang/stdlib@1.21.5",
    }
    assert all(p.locations[0].path == "/usr/bin/tool" for p in found.values())
    assert found["pkg:golang/github.com/pkg/errors@v0.9.1"].name == "github.com/pkg/errors"


def _deb(home: Path, name: str) -> Path:
    debs = home / "debs"
    if found := sorted(debs.glob(f"{name}_*.deb")):
        return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", name], cwd=debs, capture_output=True, check=True, timeout=300)
    return sorted(debs.glob(f"{name}_*.deb"))[-1]


@pytest.mark.mirror
def test_a_debian_go_program(tmp_path: Path, cached_home: Path) -> None:
    """shfmt from Debian: built outside module mode (no ``mod`` line), so the main package path and the
    toolchain are what the binary says; the toolchain must be the one Debian records in Built-Using."""
    deb = _deb(cached_home, "shfmt")
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    (root / "var/lib/dpkg/status.d").mkdir(parents=True)
    (root / "var/lib/dpkg/status.d/shfmt").write_text(control)
    built_using = re.search(r"golang-1\.\d+ \(= (\d+\.\d+\.\d+)-", control)
    assert built_using is not None
    with open_target(f"fs://{root}", Settings(tmp_path / "home")) as target:
        sbom = scan(target)
    go = {p.name: p for p in sbom.packages if p.type is PackageType.GOLANG}
    assert go["stdlib"].version == built_using.group(1)
    assert go["mvdan.cc/sh/v3/cmd/shfmt"].locations[0].path == "/usr/bin/shfmt"
    assert [p.name for p in sbom.packages if p.type is PackageType.DEB] == ["shfmt"]


@pytest.mark.network
def test_esbuild_from_npm(tmp_path: Path) -> None:
    """A module-mode Go binary with a dependency, inside an npm package: both catalogers see it."""
    subprocess.run(
        ["npm", "pack", "--silent", "@esbuild/linux-x64@0.20.2"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    package = tmp_path / "root/app/node_modules/@esbuild/linux-x64"
    package.mkdir(parents=True)
    with tarfile.open(next(tmp_path.glob("*.tgz"))) as tgz:
        tgz.extractall(tmp_path / "unpacked", filter="data")
    (tmp_path / "unpacked/package").rename(package)
    binary = (package / "bin/esbuild").read_bytes()
    # An independent reading of the same facts: the modinfo text found by a byte search.
    dep = re.search(rb"\ndep\tgolang\.org/x/sys\t(v[^\t\n]+)\t", binary)
    assert dep is not None
    with open_target(f"fs://{tmp_path / 'root'}", Settings(tmp_path / "home")) as target:
        sbom = scan(target)
    purls = {p.purl for p in sbom.packages}
    assert "pkg:npm/%40esbuild/linux-x64@0.20.2" in purls
    assert "pkg:golang/github.com/evanw/esbuild@%28devel%29" in purls
    assert f"pkg:golang/golang.org/x/sys@{dep.group(1).decode()}" in purls


def test_one_module_in_two_binaries_is_one_package_with_two_locations(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    for name in ("a", "b"):
        (root / "usr/bin" / name).write_bytes(
            go_elf("go1.21.5", MODINFO.replace("example.com/tool", f"example.com/{name}"))
        )
        (root / "usr/bin" / name).chmod(0o755)
    with open_target(f"fs://{root}", Settings(tmp_path / "home")) as target:
        sbom = scan(target)
    errors = [p for p in sbom.packages if p.name == "github.com/pkg/errors"]
    assert len(errors) == 1
    assert [loc.path for loc in errors[0].locations] == ["/usr/bin/a", "/usr/bin/b"]
    assert [p.name for p in sbom.packages] == sorted(p.name for p in sbom.packages)
    assert sbom.root_purl is None and sbom.distro is None  # a directory: no image, no os-release
