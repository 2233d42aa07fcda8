"""Runtime hardening: what a ``kind: runtime`` image never contains.

Applied to runtime variants only, after the packages are unpacked and the generated files written,
before the definition's ``paths`` (so a definition can still put something back on purpose). Dev
variants are left whole: they are for development. Each removal is recorded with its reason in
:attr:`~bastion.pipeline._assemble.Rootfs.removed` for the build report; a removed directory stands for
its contents.

Removed (paths as installed, ``/usr`` merged, so ``/bin/sh`` is ``/usr/bin/sh``):

* Shells: ``/usr/bin/{sh,bash,rbash,dash,zsh,ksh,ksh93,mksh,pdksh,csh,tcsh,bsd-csh,fish,yash,posh,
  busybox}``. ``/usr/sbin/nologin`` stays: it is every account's shell.
* Package managers: ``/usr/bin/{apt,apt-*,dpkg,dpkg-*,update-alternatives,debconf,debconf-*}``,
  ``/usr/sbin/{dpkg-*,apt-*}`` and their helpers ``/usr/lib/apt`` and ``/usr/lib/dpkg``. The package
  database (``/var/lib/dpkg/status.d``) stays: scanners read it.
* Documentation: everything under ``/usr/share/doc`` except each package's ``copyright`` (licences
  must ship with the binaries) and the directories holding them; ``/usr/share/man``,
  ``/usr/share/info``, ``/usr/share/lintian`` and translations under ``/usr/share/locale``. Locale
  data the C library needs (``/usr/lib/locale/C.utf8``) and ``/usr/share/zoneinfo`` stay.
* Symlinks left dangling by the removals above (``/etc/alternatives`` entries, man page aliases).
  Symlinks that dangled before hardening are kept: they are what the packages ship.

Changed: setuid and setgid bits are cleared from every path's image metadata (they never exist on
disk during the build); the paths are listed in :attr:`~bastion.pipeline._assemble.Rootfs.stripped`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.pipeline._assemble import Rootfs

__all__ = ["RULES", "harden"]

_SHELLS = "sh|bash|rbash|dash|zsh|ksh|ksh93|mksh|pdksh|csh|tcsh|bsd-csh|fish|yash|posh|busybox"
_PACKAGE_MANAGERS = (
    r"usr/bin/(?:apt|apt-[^/]+|dpkg|dpkg-[^/]+|update-alternatives|debconf|debconf-[^/]+)"
    r"|usr/sbin/(?:dpkg-[^/]+|apt-[^/]+)|usr/lib/(?:apt|dpkg)"
)

#: (pattern on the root-relative path, reason), first match wins; contents go with their directory.
RULES: tuple[tuple[str, str], ...] = (
    (rf"usr/bin/(?:{_SHELLS})", "shell"),
    (_PACKAGE_MANAGERS, "package manager"),
    (r"usr/share/doc/[^/]+/(?!copyright$)[^/]+", "documentation (the copyright file is kept)"),
    (r"usr/share/man", "manual pages"),
    (r"usr/share/info", "info pages"),
    (r"usr/share/lintian", "lintian overrides"),
    (r"usr/share/locale", "translations"),
)
_PATTERN = re.compile("|".join(f"(?P<r{index}>{pattern})" for index, (pattern, _) in enumerate(RULES)))
_DOC = "usr/share/doc/"
_SETID = 0o6000


def _lookup(rootfs: Rootfs, path: str) -> bool:
    """Whether ``path`` (relative to the root, may hold ``..``) exists in the tree, following its
    symlinks inside the tree as the kernel would inside the image."""
    from bastion.pipeline._entrypoint import find_in_tree

    return find_in_tree(rootfs, path).path is not None


def _dangling(rootfs: Rootfs) -> set[str]:
    found = set()
    for path, node in rootfs.nodes.items():
        if node.entry.kind == "symlink":
            target = node.entry.linkname
            base = "" if target.startswith("/") else path.rpartition("/")[0]
            if not _lookup(rootfs, f"{base}/{target}"):
                found.add(path)
    return found


def _doomed(rootfs: Rootfs) -> dict[str, str]:
    """Every path the rules remove, contents of removed directories included."""
    doomed: dict[str, str] = {}
    for path in sorted(rootfs.nodes):  # a directory sorts before its contents
        parent = path.rpartition("/")[0]
        if parent in doomed:
            doomed[path] = doomed[parent]
        elif match := _PATTERN.fullmatch(path):
            doomed[path] = RULES[int(str(match.lastgroup)[1:])][1]
    # A package's doc directory without a copyright file goes as a whole.
    kept = {path.rpartition("/")[0] for path in rootfs.nodes if path.startswith(_DOC) and path not in doomed}
    for path, node in rootfs.nodes.items():
        if path.startswith(_DOC) and path.count("/") == 3 and node.entry.kind == "dir" and path not in kept:
            doomed[path] = "documentation (no copyright file)"
            for inside in [p for p in doomed if p.startswith(f"{path}/")]:
                doomed[inside] = doomed[path]
    return doomed


def harden(rootfs: Rootfs) -> None:
    """Apply the runtime hardening rules of this module's docs to ``rootfs``, tree and disk."""
    dangling_before = _dangling(rootfs)
    rootfs.discard(_doomed(rootfs))
    while new := _dangling(rootfs) - dangling_before:
        rootfs.discard(dict.fromkeys(new, "symlink left dangling by the removals"))
    for path, node in sorted(rootfs.nodes.items()):
        if node.entry.mode & _SETID:
            entry = replace(node.entry, mode=node.entry.mode & ~_SETID)
            rootfs.nodes[path] = replace(node, entry=entry)
            rootfs.stripped.append(path)
