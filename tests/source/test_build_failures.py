"""A source build that fails in ``dpkg-buildpackage`` for a reason the log shows plainly is named in one
line with the package and the step, and publishes nothing: build dependencies debian/control asks for
that the build root lacks (a patch adding one: the root is made from the signed ``Sources`` index), and
a build that tries to reach the network (the sandbox has only loopback). The tiny source package is
served on loopback, signed with the test key; its build root (essential + build-essential) comes from
the host's mirror and is cached in the test home after the first run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bastion.debian import DEFAULT_KEYRING, host_sources
from tests.conftest import SigningKey, home_sharing_cache, run_cli, serve_directory
from tests.source import srcrepo

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.slow,
    pytest.mark.buildroot,
    # The first run makes the tiny package's build root (essential + build-essential), ~4 min.
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("bwrap") is None or shutil.which("dpkg-source") is None,
        reason="source builds run in the sandbox as root (bwrap) and need dpkg-source",
    ),
]

_CONTROL = f"""Source: {srcrepo.NAME}
Section: misc
Priority: optional
Maintainer: Bastion tests <tests@example.invalid>
Standards-Version: 4.6.2

Package: {srcrepo.NAME}
Architecture: all
Description: a package for Bastion's source-build tests
 It installs one text file.
"""
# debian/rules without debhelper (its build root is essential + build-essential only). The build target
# connects to 192.0.2.1 (TEST-NET-1, RFC 5737) with bash's /dev/tcp when NETWORK=1 is in the file.
_RULES = """#!/usr/bin/make -f
clean:
\trm -rf debian/tmp debian/files
build build-arch build-indep:
\tif grep -qx NETWORK=1 hello.txt; then bash -c 'exec 3<>/dev/tcp/192.0.2.1/80'; fi
binary binary-arch binary-indep: build
\tinstall -D -m 0644 hello.txt debian/tmp/usr/share/tiny-bastion/hello.txt
\tinstall -d debian/tmp/DEBIAN
\tdpkg-gencontrol -ptiny-bastion -Pdebian/tmp
\tdpkg-deb --root-owner-group --build debian/tmp ..
.PHONY: clean build build-arch build-indep binary binary-arch binary-indep
"""
_NETWORK_PATCH = """Description: reach the network while building
--- a/hello.txt
+++ b/hello.txt
@@ -1 +1,2 @@
 hello from the upstream source
+NETWORK=1
"""
_BUILD_DEPENDS_PATCH = """Description: add a build dependency the Sources index does not list
--- a/debian/control
+++ b/debian/control
@@ -3,2 +3,3 @@
 Maintainer: Bastion tests <tests@example.invalid>
+Build-Depends: bastion-test-not-installed
 Standards-Version: 4.6.2
"""


def _build(
    tmp_path: Path, cached_home: Path, key: SigningKey, patches: dict[str, str]
) -> tuple[int, str, Path]:
    src = srcrepo.make_source(tmp_path, control=_CONTROL, rules=_RULES)
    mirror = srcrepo.publish(tmp_path / "mirror", src, key.clearsign, sources=srcrepo.stanza(src, ""),
                             binary=True)  # fmt: skip
    # One keyring for both repositories: the test key (the loopback Sources) and Debian's (the mirror).
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(Path(DEFAULT_KEYRING).read_bytes() + key.keyring.read_bytes())
    host = "".join(
        f"  - {{uri: '{s.uri}', suites: [{', '.join(s.suites)}], components: [{', '.join(s.components)}]}}\n"
        for s in host_sources()
    )
    home = home_sharing_cache(tmp_path, cached_home)
    with serve_directory(mirror) as url:
        path = srcrepo.definition(tmp_path / "def", url, keyring, patches)
        path.write_text(path.read_text().replace("repositories:\n", "repositories:\n" + host, 1))
        result = run_cli("source", "build", str(path), home=home)
    return result.code, result.stderr, home


def test_a_build_that_tries_to_reach_the_network_is_named(
    tmp_path: Path, cached_home: Path, test_key: SigningKey
) -> None:
    code, stderr, home = _build(tmp_path, cached_home, test_key, {"network.patch": _NETWORK_PATCH})
    assert code == 2, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(
        f"error: source {srcrepo.NAME} {srcrepo.VERSION}+bastion2: build: the build tried to reach the network"
    ), line
    assert "Network is unreachable" in line
    assert not (home / "repository" / "dists").exists()


def test_build_dependencies_the_build_root_lacks_are_named(
    tmp_path: Path, cached_home: Path, test_key: SigningKey
) -> None:
    code, stderr, home = _build(tmp_path, cached_home, test_key, {"depends.patch": _BUILD_DEPENDS_PATCH})
    assert code == 2, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(
        f"error: source {srcrepo.NAME} {srcrepo.VERSION}+bastion2: build: missing build dependencies: "
        "bastion-test-not-installed"
    ), line
    assert not (home / "repository" / "dists").exists()


def test_the_same_source_without_those_patches_builds(
    tmp_path: Path, cached_home: Path, test_key: SigningKey
) -> None:
    """The control: the tiny package's own build passes in the same build root, so the failures above
    are the patches' doing."""
    code, stderr, home = _build(tmp_path, cached_home, test_key, {})
    assert code == 0, stderr
    assert (home / "repository" / "dists" / "bastion" / "InRelease").is_file()
