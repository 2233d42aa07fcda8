"""What every cataloger shares: the interface, image path resolution, locations and os-release."""

from __future__ import annotations

import shlex
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from bastion.image import FileInfo, FileKind, ImageTarget
from bastion.sbom._model import Location, Package

_MAX_HOPS = 40  # the kernel's MAXSYMLINKS
_READABLE = (FileKind.FILE, FileKind.HARDLINK)


class Cataloger(Protocol):
    """Finds one kind of package in an image; ``name`` is recorded as :attr:`Package.found_by`."""

    @property
    def name(self) -> str: ...

    def catalog(self, target: ImageTarget) -> list[Package]: ...


def resolve(target: ImageTarget, path: str, *, follow_last: bool = True) -> str | None:
    """``path`` with every symlink resolved *inside the image* (an absolute target starts again at the
    image root, ``..`` stops at the root), as the image's own processes would see it; ``None`` for a
    loop. The result need not exist."""
    parts = deque(p for p in path.split("/") if p not in ("", "."))
    # The path resolved so far, one entry per component: resolved[-1] is the whole of it, so each
    # step costs one concatenation, not a join of every component again.
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.popleft()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = (resolved[-1] if resolved else "") + "/" + part
        info = target.files.get(candidate)
        if info is not None and info.kind is FileKind.SYMLINK and (parts or follow_last):
            hops += 1
            if hops > _MAX_HOPS or info.link_target is None:
                return None
            if info.link_target.startswith("/"):
                resolved = []
            parts.extendleft(reversed([p for p in info.link_target.split("/") if p not in ("", ".")]))
            continue
        resolved.append(candidate)
    return resolved[-1] if resolved else "/"


class PathResolver:
    """:func:`resolve` for many paths of one image, remembering resolved directories."""

    def __init__(self, target: ImageTarget) -> None:
        self._target = target
        self._dirs: dict[str, str | None] = {}

    def canonical(self, path: str) -> str | None:
        """The path with its directories resolved (the last component is kept as it is)."""
        directory, _, name = path.rstrip("/").rpartition("/")
        if directory not in self._dirs:
            self._dirs[directory] = resolve(self._target, directory or "/")
        parent = self._dirs[directory]
        if parent is None or not name:
            return parent
        return parent.rstrip("/") + "/" + name


def regular(target: ImageTarget, path: str) -> FileInfo | None:
    """The file at ``path`` (symlinks followed inside the image) if it is a regular file."""
    real = resolve(target, path)
    info = target.files.get(real) if real else None
    return info if info is not None and info.kind in _READABLE else None


def read_text(target: ImageTarget, path: str, *, limit: int = 16 * 1024 * 1024) -> str | None:
    """A text file of the image (symlinks followed inside it), or ``None`` if absent or unreadable."""
    info = regular(target, path)
    if info is None:
        return None
    try:
        return target.read(info.path, limit=limit).decode("utf-8", "replace")
    except OSError:
        return None


def location(target: ImageTarget, path: str) -> Location:
    """Where evidence at ``path`` lies: the path and the layer that wrote it."""
    info = target.files.get(path)
    index = info.layer if info is not None else None
    if index is None or index >= len(target.layers):
        return Location(path)
    return Location(path, target.layers[index].digest, index)


@dataclass(frozen=True)
class OsRelease:
    id: str
    version_id: str
    id_like: tuple[str, ...]

    @property
    def distro(self) -> str | None:
        """The purl ``distro`` qualifier: ``debian-12``, ``alpine-3.19.1``."""
        return f"{self.namespace}-{self.version_id}" if self.version_id else None

    @property
    def namespace(self) -> str:
        """The purl namespace for deb/apk packages: the distribution whose packages these are."""
        if self.id in _ARCHIVES:
            return self.id
        # A rebranded system (Bastion writes ID=bastion, ID_LIKE=debian): the packages are Debian's.
        return next((like for like in self.id_like if like in _ARCHIVES), self.id or "unknown")


# Distributions with their own package archives and advisories (purl namespaces for deb and apk).
_ARCHIVES = frozenset({"debian", "ubuntu", "alpine", "wolfi"})


def os_release(target: ImageTarget) -> OsRelease | None:
    """os-release(5): ``/etc/os-release``, else ``/usr/lib/os-release``; shell-quoted values."""
    text = read_text(target, "/etc/os-release") or read_text(target, "/usr/lib/os-release")
    if text is None:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            try:
                words = shlex.split(value, comments=False)
            except ValueError:
                continue
            values[key.strip()] = words[0] if words else ""
    return OsRelease(
        values.get("ID", "").lower(),
        values.get("VERSION_ID", ""),
        tuple(values.get("ID_LIKE", "").lower().split()),
    )
