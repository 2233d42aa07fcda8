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
from typing import Any


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


@dataclass
class ImageTarget:
    """An image opened for scanning. Use as a context manager: ``root`` may be a temporary
    directory that is removed on exit.

    ``root`` holds the merged filesystem (whiteouts applied) extracted safely: nothing in a layer
    can write outside it, device nodes are not created (they are only listed in ``files``), and
    owners/modes on disk are not meaningful: use :attr:`files`.
    """

    name: str  # what the user asked for, e.g. ``bastion/python:3.11`` or ``fs:///srv/rootfs``
    root: Path
    files: Mapping[str, FileInfo]  # path → info for every path in the merged filesystem
    layers: tuple[LayerInfo, ...] = ()
    manifest_digest: str | None = None  # the platform image manifest digest, ``sha256:...``
    index_digest: str | None = None  # the index the manifest was chosen from, when there was one
    platform: str | None = None  # ``linux/amd64``
    config: Mapping[str, Any] = field(default_factory=dict)  # the OCI image config document, parsed
    repository: str | None = None  # for purls: ``bastion/python`` (no tag, no digest)
    tag: str | None = None
    _cleanup: list[Any] = field(default_factory=list, repr=False)

    def __enter__(self) -> ImageTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()

    def host_path(self, path: str) -> Path:
        """Where the file at image path ``path`` lies on disk under :attr:`root` (not resolved:
        a symlink stays a symlink)."""
        return self.root / path.lstrip("/")

    def read(self, path: str, *, limit: int = 64 * 1024 * 1024) -> bytes:
        """The content of a regular file of the image (following no symlinks outside the root)."""
        info = self.files.get(path)
        if info is None or info.kind not in (FileKind.FILE, FileKind.HARDLINK):
            raise FileNotFoundError(path)
        with self.host_path(path).open("rb") as f:
            return f.read(limit)

    def walk(self, prefix: str = "/") -> Iterator[FileInfo]:
        """Every path at or below ``prefix`` in lexical order."""
        base = prefix.rstrip("/") + "/"
        for path in sorted(self.files):
            if path == prefix or path.startswith(base) or prefix == "/":
                yield self.files[path]

    @property
    def user(self) -> str:
        return str(self.config.get("config", {}).get("User", "") or "")
