"""A tiny Debian source package made with ``dpkg-source -b``, served as a signed deb-src repository.

``tiny-bastion`` 1.0-1 is format "3.0 (quilt)" with one file, ``hello.txt``; the repository holds the
``.dsc`` and its files in ``pool/main/t/tiny-bastion/`` and a ``Sources`` index listed (SHA256) in an
InRelease clearsigned by the test key, as Debian's archive lays them out (Debian Repository Format,
"Sources Indices").
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

NAME = "tiny-bastion"
VERSION = "1.0-1"
POOL = f"pool/main/t/{NAME}"

_CONTROL = f"""Source: {NAME}
Section: misc
Priority: optional
Maintainer: Bastion tests <tests@example.invalid>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2

Package: {NAME}
Architecture: all
Description: a package for Bastion's source-build tests
 It installs one text file.
"""
_CHANGELOG = f"""{NAME} ({VERSION}) unstable; urgency=medium

  * Initial release.

 -- Bastion tests <tests@example.invalid>  Sat, 05 Nov 2022 12:24:46 +0000
"""


def make_source(
    dest: Path, *, control: str = _CONTROL, rules: str = "#!/usr/bin/make -f\n%:\n\tdh $@\n"
) -> Path:
    """``dpkg-source -b`` of the tiny package in ``dest`` (its ``debian/control`` and ``debian/rules``
    replaceable); returns the directory holding the .dsc."""
    out = dest / "src"
    tree = out / f"{NAME}-1.0"
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "hello.txt").write_text("hello from the upstream source\n")
    with tarfile.open(out / f"{NAME}_1.0.orig.tar.gz", "w:gz") as tar:
        tar.add(tree / "hello.txt", arcname=f"{NAME}-1.0/hello.txt")
    (tree / "debian" / "control").write_text(control)
    (tree / "debian" / "changelog").write_text(_CHANGELOG)
    (tree / "debian" / "source" / "format").write_text("3.0 (quilt)\n")
    (tree / "debian" / "rules").write_text(rules)
    (tree / "debian" / "rules").chmod(0o755)
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=out, check=True, capture_output=True)
    return out


def stanza(src: Path, build_depends: str = "debhelper-compat (= 13)") -> str:
    """The package's Sources stanza, from the files ``dpkg-source -b`` made."""
    files = sorted(p for p in src.iterdir() if p.is_file())
    sums = "".join(
        f" {hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_size} {p.name}\n" for p in files
    )
    return (f"Package: {NAME}\nBinary: {NAME}\nVersion: {VERSION}\nMaintainer: Bastion tests <tests@example.invalid>\n"
            + (f"Build-Depends: {build_depends}\n" if build_depends else "")
            + f"Architecture: all\nFormat: 3.0 (quilt)\n"
            f"Directory: {POOL}\nChecksums-Sha256:\n{sums}")  # fmt: skip


def publish(
    root: Path,
    src: Path,
    clearsign: Callable[[bytes], bytes],
    *,
    sources: str | None = None,
    binary: bool = False,
) -> Path:
    """Lay the repository out under ``root``: the pool, ``dists/bookworm/main/source/Sources`` (``sources``,
    or the stanza of the files in ``src``), with ``binary`` an empty ``binary-amd64/Packages`` (so that
    another repository gives the build root), and the signed InRelease; returns ``root``."""
    pool = root / POOL
    pool.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        if path.is_file():
            (pool / path.name).write_bytes(path.read_bytes())
    index = (sources if sources is not None else stanza(src)).encode()
    directory = root / "dists" / "bookworm" / "main" / "source"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Sources").write_bytes(index)
    listed = f" {hashlib.sha256(index).hexdigest()} {len(index)} main/source/Sources\n"
    if binary:
        (root / "dists" / "bookworm" / "main" / "binary-amd64").mkdir(parents=True, exist_ok=True)
        (root / "dists" / "bookworm" / "main" / "binary-amd64" / "Packages").write_bytes(b"")
        listed += f" {hashlib.sha256(b'').hexdigest()} 0 main/binary-amd64/Packages\n"
    release = (
        f"Origin: Bastion tests\nSuite: bookworm\nCodename: bookworm\n"
        f"Date: {format_datetime(datetime.now(UTC), usegmt=True)}\nArchitectures: amd64 source\nComponents: main\n"
        f"SHA256:\n{listed}"
    ).encode()
    (root / "dists" / "bookworm" / "InRelease").write_bytes(clearsign(release))
    return root


def definition(dest: Path, uri: str, keyring: Path, patches: dict[str, str]) -> Path:
    """A package definition for the tiny package from ``uri``, with ``patches`` (name → text) beside it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in patches.items():
        (dest / name).write_text(text)
    items = "".join(f"  - {{file: {name}, fixes: [CVE-2099-0002]}}\n" for name in patches)
    path = dest / f"{NAME}.yaml"
    path.write_text(
        f"source: {NAME}\nrevision: 2\nreason: Test rebuild\nkeyring: {keyring}\n"
        f"repositories:\n  - {{uri: {uri}, suites: [bookworm], components: [main]}}\n"
        + (f"patches:\n{items}" if patches else "")
    )
    return path


GOOD_PATCH = """Description: change the greeting
--- a/hello.txt
+++ b/hello.txt
@@ -1 +1 @@
-hello from the upstream source
+hello from Bastion's patch
"""
BAD_PATCH = """Description: a patch written for another version
--- a/hello.txt
+++ b/hello.txt
@@ -1 +1 @@
-a line this version does not have
+hello from Bastion's patch
"""
