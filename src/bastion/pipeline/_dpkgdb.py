"""The dpkg database of an assembled tree: what each package put there, and nothing else.

Written last, from the finished tree, so that a scanner or auditor reading it finds exactly the files
the image holds. A package lists a path (in its ``md5sums``, its ``.list`` or its ``Conffiles``)
only while the tree still holds it from that package: hardening and the definition's ``paths``
remove files, a later package or Bastion writes over others. dpkg does the same: a file replaced by
another package leaves the first one's list (deb-control(5) ``Replaces``), and a file dpkg removes
leaves the database with it. Directories are listed by every package that ships them, as dpkg
lists them, while they are still directories.

Runtime variants get what distroless images have and Syft, Trivy and Grype read:
``/var/lib/dpkg/status.d/<name>`` (the control file, with a ``Conffiles`` field when the package
has conffiles in the image) and ``status.d/<name>.md5sums``. Dev variants get a database dpkg and
apt work with: ``status`` (each control file with ``Status: install ok installed`` after its
``Package`` field, and the ``Conffiles`` field), an empty ``available``, and
``info/<name>.{list,md5sums,conffiles,shlibs,symbols}`` (``<name>:<arch>`` for ``Multi-Arch:
same``). ``Conffiles`` holds each conffile's md5 as shipped, as dpkg records it to tell a conffile
changed locally from one changed by an upgrade. The ``.list`` files hold the paths as installed here
(``/usr/bin/bash``, not the ``/bin/bash`` the package ships). Maintainer scripts are not copied:
they never ran.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bastion.pipeline._assemble import Node
    from bastion.pipeline._unpacked import Unpacked

__all__ = ["ADMIN", "DEV_DIRS", "control_field", "database"]

ADMIN = "var/lib/dpkg"
DEV_DIRS = (f"{ADMIN}/info", f"{ADMIN}/updates", f"{ADMIN}/triggers", f"{ADMIN}/alternatives")
_INFO_MEMBERS = ("md5sums", "conffiles", "shlibs", "symbols")

#: (path, content, origin) of a file the database is made of.
Generated = tuple[str, bytes, str]


def control_field(control: bytes, name: str) -> str:
    """The first word of field ``name`` of a control file, or ``""``."""
    match = re.search(
        rb"^" + re.escape(name.encode()) + rb":[ \t]*(\S*)", control, re.MULTILINE | re.IGNORECASE
    )
    return match.group(1).decode() if match else ""


def _lines(data: bytes) -> list[str]:
    """The non-blank lines of a control member."""
    return [line for line in data.decode("utf-8", "surrogateescape").splitlines() if line.strip()]


class _Holdings:
    """What the tree still holds of one package: its entries' paths, as installed."""

    def __init__(self, item: Unpacked, nodes: Mapping[str, Node], installed: Callable[[str], str]) -> None:
        name = item.package.name
        self.installed = installed
        self.paths: list[str] = []
        for entry, _ in item.entries:
            node = nodes.get(entry.path)
            if node is None or (entry.kind == "dir") != (node.entry.kind == "dir"):
                continue
            # a directory is every shipping package's; anything else the last writer's only
            if entry.kind == "dir" or node.owner == name:
                self.paths.append(entry.path)
        self.held = frozenset(self.paths)
        self.dropped = 0  # lines of md5sums and conffiles left out

    def holds(self, listed: str) -> bool:
        """Whether a path as the package lists it (``bin/x``, ``/etc/y``) is still its in the tree."""
        return self.installed(listed.strip("/")) in self.held

    def member(self, data: bytes, *, md5sums: bool) -> bytes:
        """``md5sums`` (``<md5>  <path>``) or ``conffiles`` (``[flags] /path``, dpkg 1.20 added flags)
        without the lines of paths the tree does not hold from this package."""
        kept = []
        for line in _lines(data):
            path = line.split(None, 1)[1] if md5sums and " " in line else line.split()[-1]
            if self.holds(path):
                kept.append(line)
            else:
                self.dropped += 1
        return "".join(f"{line}\n" for line in kept).encode("utf-8", "surrogateescape")

    def conffiles(self, conffiles: bytes, hashes: Mapping[str, str]) -> list[str]:
        """The ``Conffiles`` field's lines (`` /path md5``) for the conffiles the tree holds."""
        listed = []
        for line in _lines(conffiles):
            path = self.installed(line.split()[-1].strip("/"))
            if path in self.held and path in hashes:
                listed.append(f" /{path} {hashes[path]}")
        return listed


def _stanza(control: bytes, conffiles: list[str], *, installed: bool) -> bytes:
    """A control file as a status stanza: marked installed (dev only: the status.d entries of
    distroless images are the control files), with the ``Conffiles`` field."""
    lines = control.rstrip(b"\n").split(b"\n")
    if installed:
        at = next((i + 1 for i, line in enumerate(lines) if line.lower().startswith(b"package:")), 1)
        lines.insert(at, b"Status: install ok installed")
    if conffiles:
        lines += [b"Conffiles:", *(line.encode("utf-8", "surrogateescape") for line in conffiles)]
    return b"\n".join(lines) + b"\n"


def _note(held: _Holdings, origin: str) -> str:
    return (
        f"{origin}, less {held.dropped} path(s) the image does not hold from it" if held.dropped else origin
    )


def database(
    unpacked: Sequence[Unpacked], nodes: Mapping[str, Node], installed: Callable[[str], str], *, dev: bool
) -> list[Generated]:
    """The database files for the packages ``unpacked`` as the tree ``nodes`` holds them (see the
    module docs); ``installed`` turns a path as a package ships it into the tree's (``/usr`` merged)."""
    files: list[Generated] = []
    stanzas = []
    for item in sorted(unpacked, key=lambda u: (u.package.name, u.package.architecture)):
        package, members = item.package, item.members
        deb = f"{package.name}_{package.version}_{package.architecture}.deb"
        held = _Holdings(item, nodes, installed)
        conffiles = held.conffiles(members.get("conffiles", b""), item.conffile_md5)
        stanza = _stanza(members["control"], conffiles, installed=dev)
        if not dev:
            origin = f"control member of {deb}" + (", with the md5 of its conffiles" if conffiles else "")
            files.append((f"{ADMIN}/status.d/{package.name}", stanza, origin))
            if "md5sums" in members:
                sums = held.member(members["md5sums"], md5sums=True)
                files.append(
                    (
                        f"{ADMIN}/status.d/{package.name}.md5sums",
                        sums,
                        _note(held, f"md5sums member of {deb}"),
                    )
                )
            continue
        stanzas.append(stanza)
        stem = package.name
        if control_field(members["control"], "Multi-Arch") == "same":  # info/ names are "<name>:<arch>"
            stem += f":{control_field(members['control'], 'Architecture')}"
        listing = "/.\n" + "".join(f"/{path}\n" for path in held.paths)
        files.append(
            (
                f"{ADMIN}/info/{stem}.list",
                listing.encode(),
                f"data member of {deb}: the paths the image holds",
            )
        )
        for member in _INFO_MEMBERS:
            if member in members:
                data = members[member]
                origin = f"{member} member of {deb}"
                if member in ("md5sums", "conffiles"):
                    before = held.dropped
                    data = held.member(data, md5sums=member == "md5sums")
                    if held.dropped > before:
                        origin += f", less {held.dropped - before} path(s) the image does not hold from it"
                files.append((f"{ADMIN}/info/{stem}.{member}", data, origin))
    if dev:
        files += [
            (f"{ADMIN}/info/format", b"1\n", "dpkg database format 1 (Bastion)"),
            (
                f"{ADMIN}/status",
                b"\n".join(stanzas),
                "control members of every package, marked installed, with conffile md5sums",
            ),
            (f"{ADMIN}/available", b"", "empty (Bastion)"),
        ]
    return files
