"""The dpkg cataloger: a full dpkg database and distroless-style status.d, then the real python runtime
image Bastion builds, checked against its lock file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

from bastion.config import Settings
from bastion.image import open_target
from bastion.sbom import PackageType, scan
from bastion.sbom._catalog import DpkgCataloger

STATUS = """\
Package: libfoo1
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: foo (1.2-3)
Version: 1.2-3+b1
Maintainer: Foo Team <foo@example.org>
Homepage: https://foo.example.org
Depends: libc6 (>= 2.34), awk | libmissing
Description: the foo library
 Long text.

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Description: GNU C Library

Package: mawk
Status: install ok installed
Architecture: amd64
Version: 1.3.4-1
Provides: awk
Description: an awk

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Description: gone

Package: half
Status: install reinstreq half-installed
Architecture: amd64
Version: 1.0
Description: broken
"""

COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020 Foo
License: Expat
 Permission is hereby granted...
"""


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_status_database(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "/etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    write(root, "/var/lib/dpkg/status", STATUS)
    # merged /usr: the .list names /lib/..., the file is at /usr/lib/...
    write(
        root,
        "/var/lib/dpkg/info/libfoo1:amd64.list",
        "/.\n/lib\n/lib/libfoo.so.1\n/usr/share/doc/libfoo1/copyright\n",
    )
    write(root, "/usr/lib/libfoo.so.1", "ELF")
    (root / "lib").symlink_to("usr/lib")
    write(root, "/usr/share/doc/libfoo1/copyright", COPYRIGHT)
    with open_target(f"fs://{root}", Settings(tmp_path / "home")) as target:
        packages = {p.name: p for p in DpkgCataloger().catalog(target)}
    assert set(packages) == {"libfoo1", "libc6", "mawk"}  # removed and half-installed are not there
    foo = packages["libfoo1"]
    assert foo.purl == "pkg:deb/debian/libfoo1@1.2-3%2Bb1?arch=amd64&distro=debian-12&upstream=foo%401.2-3"
    assert (foo.source_name, foo.source_version) == ("foo", "1.2-3")
    assert foo.supplier == "Foo Team <foo@example.org>" and foo.description == "the foo library"
    assert foo.homepage == "https://foo.example.org"
    assert foo.files == ["/usr/lib/libfoo.so.1", "/usr/share/doc/libfoo1/copyright"]
    assert [lic.expression for lic in foo.licenses] == ["MIT"]
    # libc6 by name; "awk | libmissing" by the first alternative present, through mawk's Provides
    assert foo.depends == [packages["libc6"].ref, packages["mawk"].ref]
    assert foo.locations[0].path == "/var/lib/dpkg/status"
    assert packages["libc6"].purl == "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"


def test_status_d_paragraphs_and_md5sums(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "/usr/lib/os-release", "ID=bastion\nID_LIKE=debian\nVERSION_ID=12\n")
    (root / "etc").mkdir()
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    write(
        root,
        "/var/lib/dpkg/status.d/tzdata",
        "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
    )
    write(
        root,
        "/var/lib/dpkg/status.d/tzdata.md5sums",
        "0123456789abcdef0123456789abcdef  usr/share/zoneinfo/UTC\n",
    )
    write(
        root, "/var/lib/dpkg/status.d/other", "d41d8cd98f00b204e9800998ecf8427e  usr/bin/x\n"
    )  # md5sums content
    write(root, "/usr/share/zoneinfo/UTC", "TZif")
    with open_target(f"fs://{root}", Settings(tmp_path / "home")) as target:
        (tz,) = DpkgCataloger().catalog(target)
    assert tz.purl == "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12"
    assert tz.files == ["/usr/share/zoneinfo/UTC"]
    assert tz.locations[0].path == "/var/lib/dpkg/status.d/tzdata"


def test_a_malformed_paragraph_hides_no_package_after_it(tmp_path: Path) -> None:
    """deb822(5): paragraphs end at blank lines. A paragraph of lines that are not fields must not end
    the file (python-debian's Deb822 stopped there, dropping every package after it from the SBOM)."""
    root = tmp_path / "root"
    write(root, "/etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    status = (
        "Package: first\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"
        "Description: one\n\n"
        "not a field\n\n"
        "Package: hidden\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n"
    )
    write(root, "/var/lib/dpkg/status", status)
    result = run_cli("sbom", f"fs://{root}", "--format", "cyclonedx-json", home=tmp_path / "home")
    assert result.code == 0, result.stderr
    names = sorted(c["name"] for c in json.loads(result.stdout)["components"])
    assert names == ["first", "hidden"]


# -- the real python runtime image ------------------------------------------------------------------


@pytest.fixture(scope="module")
def python_home(cached_home: Path) -> Path:
    result = run_cli(
        "build", "catalog/python/python.yaml", "--locked", "--variant", "runtime",
        "--platform", "linux/amd64", "--skip-tests", home=cached_home, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    return cached_home


@pytest.mark.mirror
@pytest.mark.slow
def test_the_python_runtime_image_has_exactly_its_locked_packages(python_home: Path) -> None:
    lock = json.loads((REPO_ROOT / "catalog/python/python.lock.json").read_text())
    locked = {
        (p["name"], p["version"], p["architecture"])
        for p in lock["variants"]["runtime"]["linux/amd64"]["packages"]
    }
    with open_target("bastion/python:3.11", Settings(python_home), platform="linux/amd64") as target:
        sbom = scan(target)
        layers = {layer.digest for layer in target.layers}
    debs = [p for p in sbom.packages if p.type is PackageType.DEB]
    assert {(p.name, p.version, p.architecture) for p in debs} == locked
    assert len(debs) == len(locked)
    assert Counter(p.type for p in sbom.packages) == {PackageType.DEB: len(locked)}
    assert sbom.distro == "debian-12" and sbom.platform == "linux/amd64"
    assert sbom.root_purl is not None and sbom.root_purl.startswith("pkg:oci/python@sha256:")
    assert all(p.locations[0].layer_digest in layers for p in debs)
    by_name = {p.name: p for p in debs}
    assert "/usr/bin/python3.11" in by_name["python3.11-minimal"].files
    assert by_name["libc6"].ref in by_name["python3.11-minimal"].depends
    assert [lic.expression for lic in by_name["zlib1g"].licenses] == ["Zlib"]
    assert by_name["libssl3"].source_name == "openssl"
