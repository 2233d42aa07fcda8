"""What every check reads: the image's files as the layers record them, its accounts, its config.

The account files are parsed here by hand: they are colon-separated lines (passwd(5), group(5),
shadow(5)) and no dependency reads them from a directory other than the running system's.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bastion.identifiers import LABEL_COMPLIANCE, LABEL_VARIANT
from bastion.image import FileInfo, FileKind, ImageTarget

#: The label Bastion's builder sets on every image (``runtime``, ``dev``, ...).
VARIANT_LABEL = LABEL_VARIANT
#: The label naming the compliance profiles an image passed (``name@version``, comma-separated). The
#: build sets it from the result of evaluating those profiles, so no rule may see it: a result that
#: depended on it would be circular, and an image scanned before and after labelling would differ.
COMPLIANCE_LABEL = LABEL_COMPLIANCE
DPKG_STATUS = "/var/lib/dpkg/status"
BIN_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
_MAX_HOPS = 40  # the kernel's MAXSYMLINKS
_CONTENT_KINDS = (FileKind.FILE, FileKind.HARDLINK)
# shadow(5): a password field starting with "!" or "*" cannot match any password (crypt(5) never
# produces those characters), so the account cannot log in with one.
_LOCKED = ("!", "*")
_SHADOWED = "x"  # passwd(5): "x" means the password is in /etc/shadow


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    password: str
    gid: int


@dataclass(frozen=True)
class ShadowEntry:
    name: str
    password: str


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` matches one of the shell-style ``patterns`` (an allowlist)."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


class Context:
    """One image as the checks see it. Everything is computed once, on first use."""

    def __init__(self, target: ImageTarget) -> None:
        self.target = target
        self.files = target.files
        self.malformed: list[str] = []  # "file:line: why" for account lines that do not parse

    # -- image config ---------------------------------------------------------------------------

    @cached_property
    def config(self) -> dict[str, Any]:
        """The ``config`` object of the OCI image config (image-spec config.md, "Properties")."""
        value = self.target.config.get("config") or {}
        return dict(value) if isinstance(value, dict) else {}

    @cached_property
    def labels(self) -> dict[str, str]:
        """The config's labels, without :data:`COMPLIANCE_LABEL` (the result of this evaluation)."""
        value = self.config.get("Labels") or {}
        if not isinstance(value, dict):
            return {}
        return {str(k): str(v) for k, v in value.items() if k != COMPLIANCE_LABEL}

    @cached_property
    def env(self) -> list[tuple[str, str]]:
        pairs = []
        for item in self.config.get("Env") or []:
            name, _, value = str(item).partition("=")
            pairs.append((name, value))
        return pairs

    @cached_property
    def variant(self) -> str | None:
        return self.labels.get(VARIANT_LABEL)

    @cached_property
    def is_runtime(self) -> bool:
        """A runtime image: labelled ``runtime`` by Bastion, or one without a dpkg database (whatever
        built it: an image that cannot install packages is run, not developed in)."""
        return self.variant == "runtime" or DPKG_STATUS not in self.files

    # -- files ----------------------------------------------------------------------------------

    def resolve(self, path: str) -> FileInfo | None:
        """The entry ``path`` names after following symlinks inside the image (also in its parent
        directories), or ``None`` when it does not exist or the links loop."""
        parts = [p for p in path.split("/") if p]
        current = ""
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = current.rsplit("/", 1)[0]
                continue
            candidate = f"{current}/{part}"
            info = self.files.get(candidate)
            if info is None:
                return None
            if info.kind is FileKind.SYMLINK and info.link_target is not None:
                hops += 1
                if hops > _MAX_HOPS:
                    return None
                target = info.link_target
                parts = [p for p in target.split("/") if p] + parts
                if target.startswith("/"):
                    current = ""
                continue
            current = candidate
        return self.files.get(current or "/")

    def regular_file(self, path: str) -> FileInfo | None:
        """The regular file ``path`` leads to (symlinks followed inside the image), or ``None``."""
        info = self.resolve(path)
        return info if info is not None and info.kind in _CONTENT_KINDS else None

    def exists(self, path: str) -> bool:
        return self.resolve(path) is not None

    def read(self, path: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
        """The content of the regular file ``path`` (symlinks followed inside the image), or ``None``."""
        info = self.resolve(path)
        if info is None or info.kind not in _CONTENT_KINDS:
            return None
        try:
            return self.target.read(info.path, limit=limit)
        except FileNotFoundError:
            return None

    def text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def executables(self, names: frozenset[str], prefixes: tuple[str, ...] = ()) -> list[str]:
        """Paths in the standard command directories whose name is in ``names`` or starts with one
        of ``prefixes``, and that lead to a file (a dangling link runs nothing)."""
        found = []
        for path in self.files:
            directory, _, base = path.rpartition("/")
            if directory not in BIN_DIRS:
                continue
            if base in names or (prefixes and base.startswith(prefixes)):
                info = self.resolve(path)
                if info is not None and info.kind in _CONTENT_KINDS:
                    found.append(path)
        return sorted(found)

    def regular_files(self) -> list[FileInfo]:
        return [f for f in self.files.values() if f.kind in _CONTENT_KINDS]

    # -- accounts -------------------------------------------------------------------------------

    def _lines(self, path: str, fields: int) -> list[list[str]]:
        content = self.text(path)
        rows = []
        for number, line in enumerate((content or "").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            row = line.split(":")
            if len(row) < fields:
                self.malformed.append(f"{path}:{number}: {len(row)} fields, expected {fields}")
                continue
            rows.append(row)
        return rows

    def _number(self, path: str, row: list[str], index: int) -> int | None:
        try:
            return int(row[index])
        except ValueError:
            self.malformed.append(f"{path}: {row[0]}: {row[index]!r} is not a number")
            return None

    @cached_property
    def passwd(self) -> list[PasswdEntry]:
        entries = []
        for row in self._lines("/etc/passwd", 7):  # passwd(5): name:password:UID:GID:GECOS:home:shell
            uid, gid = self._number("/etc/passwd", row, 2), self._number("/etc/passwd", row, 3)
            if uid is not None and gid is not None:
                entries.append(PasswdEntry(row[0], row[1], uid, gid, row[5], row[6]))
        return entries

    @cached_property
    def group(self) -> list[GroupEntry]:
        entries = []
        for row in self._lines("/etc/group", 4):  # group(5): name:password:GID:members
            gid = self._number("/etc/group", row, 2)
            if gid is not None:
                entries.append(GroupEntry(row[0], row[1], gid))
        return entries

    @cached_property
    def shadow(self) -> list[ShadowEntry]:
        # shadow(5): name:password:lastchange:min:max:warn:inactive:expire:reserved
        return [ShadowEntry(row[0], row[1]) for row in self._lines("/etc/shadow", 9)]

    @cached_property
    def uids(self) -> frozenset[int]:
        return frozenset(e.uid for e in self.passwd)

    @cached_property
    def gids(self) -> frozenset[int]:
        return frozenset(e.gid for e in self.group)

    @cached_property
    def usable_passwords(self) -> list[str]:
        """Findings, one per account whose password could be used to log in: a hash in /etc/passwd
        (passwd(5): ``x`` means "in /etc/shadow"), or a shadow field not starting with ``!`` or ``*``
        (shadow(5): crypt(5) never produces those, so such a field matches no password)."""
        findings = [
            f"/etc/passwd: {e.name} has a password hash"
            for e in self.passwd
            if e.password and e.password != _SHADOWED and not e.password.startswith(_LOCKED)
        ]
        findings += [
            f"/etc/shadow: {e.name} has a usable password"
            for e in self.shadow
            if e.password and not e.password.startswith(_LOCKED)
        ]
        return findings

    def group_name(self, gid: int) -> str | None:
        return next((e.name for e in self.group if e.gid == gid), None)

    def user(self, spec: str) -> PasswdEntry | None:
        """The passwd entry a user name or numeric uid names."""
        for entry in self.passwd:
            if entry.name == spec or (spec.isdigit() and entry.uid == int(spec)):
                return entry
        return None
