"""What a scan sees of an image: its identity, its config, and its files with the owners and modes
the layers record.

Every scanner (SBOM catalogers, compliance rules, later the CVE scan) works on an
:class:`ImageTarget`, whatever the image came from: the local store, an ``oci-dir://`` layout, a
``docker-archive://`` tar, a registry, or a plain directory (``fs://DIR``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol


class FileKind(enum.StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    FIFO = "fifo"
    SOCKET = "socket"


@dataclass(frozen=True)
class FileInfo:
    """One path of the merged (squashed) filesystem, as the layer that last wrote it records it.

    ``path`` is absolute and normalised (``/usr/bin/python3.11``). ``uid``, ``gid`` and ``mode``
    are the numbers in the tar header, not whatever the extracted copy on disk has (extraction as an
    ordinary user cannot keep them). ``layer`` is the index into :attr:`ImageTarget.layers`
    (``None`` for ``fs://`` targets, which have no layers).
    """

    path: str
    kind: FileKind
    mode: int  # permission bits including setuid/setgid/sticky (0o7777 mask)
    uid: int
    gid: int
    size: int
    link_target: str | None = None  # symlink or hardlink target, as recorded
    layer: int | None = None
    xattrs: Mapping[str, bytes] = field(default_factory=dict)  # e.g. security.capability


@dataclass(frozen=True)
class LayerInfo:
    digest: str  # the layer blob's digest, ``sha256:...``
    diff_id: str | None  # the uncompressed digest from the config, where known
    media_type: str
    size: int


class Contents(Protocol):
    """Where the bytes of an image's regular files come from (a directory, or the layers)."""

    def read(self, path: str, limit: int) -> bytes: ...

    def open(self, path: str) -> BinaryIO: ...

    def close(self) -> None: ...


class DirContents:
    """Files of a root filesystem directory (``fs://``, or a tree the builder has just assembled)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read(self, path: str, limit: int) -> bytes:
        with self.open(path) as f:
            return f.read(limit)

    def open(self, path: str) -> BinaryIO:
        return (self.root / path.lstrip("/")).open("rb")

    def close(self) -> None:
        pass


@dataclass
class ImageTarget:
    """An image opened for scanning. Use as a context manager: what opening it made (the layers'
    uncompressed spools, a pulled copy) is removed on exit.

    ``files`` lists the merged filesystem (whiteouts applied) with the owners and modes the layers
    record; :meth:`read` and :meth:`open` give a regular file's bytes. An image from layers is never
    extracted to disk (:mod:`bastion.image._extract`); ``root`` is set only for a directory target
    (``fs://``, or the builder's tree).
    """

    name: str  # what the user asked for, e.g. ``bastion/python:3.11`` or ``fs:///srv/rootfs``
    root: Path | None
    files: Mapping[str, FileInfo]  # path → info for every path in the merged filesystem
    layers: tuple[LayerInfo, ...] = ()
    manifest_digest: str | None = None  # the platform image manifest digest, ``sha256:...``
    index_digest: str | None = None  # the index the manifest was chosen from, when there was one
    platform: str | None = None  # ``linux/amd64``
    config: Mapping[str, Any] = field(default_factory=dict)  # the OCI image config document, parsed
    repository: str | None = None  # for purls: ``bastion/python`` (no tag, no digest)
    tag: str | None = None
    contents: Contents | None = field(default=None, repr=False)  # default: DirContents(root)
    # Where catalogers may keep what they derive from a file's content, found again by that
    # content (the licences of a copyright file); None: derive everything again.
    derived_cache: Path | None = None
    _cleanup: list[Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.contents is None:
            if self.root is None:
                raise ValueError("an image target needs a root directory or its contents")
            self.contents = DirContents(self.root)

    def __enter__(self) -> ImageTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.contents is not None:
            self.contents.close()
        while self._cleanup:
            self._cleanup.pop()()

    def _regular(self, path: str) -> Contents:
        info = self.files.get(path)
        if info is None or info.kind not in (FileKind.FILE, FileKind.HARDLINK) or self.contents is None:
            raise FileNotFoundError(path)
        return self.contents

    def read(self, path: str, *, limit: int = 64 * 1024 * 1024) -> bytes:
        """The content (at most ``limit`` bytes) of a regular file of the image; symlinks are not
        followed: ``FileNotFoundError`` for anything that is not a regular file or a hardlink to one."""
        try:
            return self._regular(path).read(path, limit)
        except KeyError:  # a hardlink whose target had no content
            raise FileNotFoundError(path) from None

    def open(self, path: str) -> BinaryIO:
        """A seekable binary reader of a regular file of the image (as :meth:`read`)."""
        try:
            return self._regular(path).open(path)
        except KeyError:
            raise FileNotFoundError(path) from None

    def walk(self, prefix: str = "/") -> Iterator[FileInfo]:
        """Every path at or below ``prefix`` in lexical order."""
        base = prefix.rstrip("/") + "/"
        for path in sorted(self.files):
            if path == prefix or path.startswith(base) or prefix == "/":
                yield self.files[path]

    @property
    def user(self) -> str:
        return str(self.config.get("config", {}).get("User", "") or "")
