"""Where image blobs come from: an OCI image layout directory (the local store, ``oci-dir://``) or a tar
archive (``docker-archive://``), and picking one platform's manifest out of them.

Every document read here (index, manifest, config) is checked against the digest that names it before
it is parsed (image-spec descriptor.md "Verification": "the content SHOULD be verified against the
digest"; we make it a MUST). Layers are streamed and verified by :mod:`bastion.image._extract`.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from bastion.documents import load_json
from bastion.errors import InputError, IntegrityError
from bastion.oci import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MAX_NESTING,
    Descriptor,
    DocumentBudget,
    Platform,
    check_digest,
    host_platform,
    load_json_object,
    parse_index,
    parse_manifest,
)

MAX_DOCUMENT_SIZE = 4 * 1024 * 1024  # the distribution spec's usual manifest limit; configs are smaller
_MAX_SYMLINKS = 40


class Files(Protocol):
    """Named members of an image container: a directory or a tar archive."""

    where: str

    def exists(self, name: str) -> bool: ...

    def open(self, name: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...


class DirFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    def _path(self, name: str) -> Path:
        # Names come from our own code or from digests checked by check_digest: no traversal possible.
        return self.root / name

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            f = self._path(name).open("rb")
        except FileNotFoundError:
            raise InputError(f"{name} is missing", where=self.where) from None
        with f:
            yield f


class TarFiles:
    """Members of an (optionally compressed) tar, read by name; nothing is extracted to disk."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
            self._members = {
                m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile() or m.issym()
            }
        except (OSError, tarfile.TarError) as exc:
            raise InputError(f"cannot read the archive: {exc}", where=self.where) from None

    def close(self) -> None:
        self._tar.close()

    def exists(self, name: str) -> bool:
        return name in self._members

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        """The regular file member ``name`` is, following symbolic links inside the archive (old docker
        save archives link repeated layers) at most as many times as Linux does (path_resolution(7):
        40, then ELOOP); ``None`` when it leads nowhere in the archive."""
        member = self._members.get(name)
        for _hop in range(_MAX_SYMLINKS + 1):
            if member is None or not member.issym():
                return member
            # tarfile's own rule: a link target is relative to the directory of the link.
            base = posixpath.dirname(member.name.removeprefix("./"))
            target = posixpath.normpath(posixpath.join(base, member.linkname)).lstrip("/")
            member = None if target.startswith("../") else self._members.get(target)
        raise InputError(f"{name} is a chain of more than {_MAX_SYMLINKS} symbolic links", where=self.where)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        member = self._resolve(name)
        try:
            f = None if member is None else self._tar.extractfile(member)
        except KeyError:
            f = None
        if f is None:
            raise InputError(f"{name} is missing from the archive", where=self.where)
        with f:
            yield f


def read_verified(files: Files, name: str, digest: str, what: str) -> bytes:
    """A small document whose sha256 must be ``digest``; refused before it is parsed."""
    with files.open(name) as f:
        data = f.read(MAX_DOCUMENT_SIZE + 1)
    if len(data) > MAX_DOCUMENT_SIZE:
        raise IntegrityError(f"{what} {name} is larger than {MAX_DOCUMENT_SIZE} bytes", where=files.where)
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise IntegrityError(f"{what} {name} is {actual}, expected {digest}", where=files.where)
    return data


def blob_name(digest: str) -> str:
    """image-layout.md "Blobs": ``blobs/<alg>/<encoded>``."""
    return "blobs/sha256/" + check_digest(digest).removeprefix("sha256:")


@dataclass(frozen=True)
class Chosen:
    """The manifest picked for one platform, with its parsed content and config."""

    manifest: Descriptor | None  # None for docker save archives without an OCI layout
    index: Descriptor | None
    layers: tuple[Descriptor, ...]
    config: dict[str, Any]
    platform: Platform


def layout_index(files: Files) -> list[Descriptor]:
    """The entries of an OCI layout's ``index.json`` (image-layout.md); ``oci-layout`` must say 1.0.0."""
    if not files.exists("oci-layout"):
        raise InputError("not an OCI image layout (no oci-layout file)", where=files.where)
    with files.open("oci-layout") as f:
        layout = load_json(f.read(4096), where=f"{files.where}:oci-layout", max_bytes=4095)
    version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    if version != "1.0.0":
        raise IntegrityError(f"unsupported OCI layout version {version!r}", where=files.where)
    with files.open("index.json") as f:
        data = f.read(MAX_DOCUMENT_SIZE + 1)
    return list(parse_index(data, where=f"{files.where}:index.json").manifests)


def choose(files: Files, desc: Descriptor, wanted: Platform | None) -> Chosen:
    """The manifest for ``wanted`` (else the host's platform) reached from ``desc``, verified.

    An index is searched depth-first in order; an index with a single image manifest and no recorded
    platforms gives that manifest. No match fails naming the platforms the image has.
    """
    target = wanted or host_platform()
    manifest, index = _find(files, desc, target, None, wanted is None)
    data = read_verified(files, blob_name(manifest.digest), manifest.digest, "manifest")
    parsed = parse_manifest(data, where=manifest.digest)
    config_data = read_verified(files, blob_name(parsed.config.digest), parsed.config.digest, "config")
    config = load_json_object(config_data, "config", parsed.config.digest)
    found = config_platform(config, parsed.config.digest)
    if not found.matches(target) and (wanted is not None or manifest.platform is not None):
        raise InputError(f"image {manifest.digest} is for {found}, not {target}", where=files.where)
    return Chosen(manifest, index, parsed.layers, config, found)


def config_platform(config: dict[str, Any], where: str) -> Platform:
    try:
        return Platform.from_json(config, where=where)
    except IntegrityError:
        raise IntegrityError("image config has no os/architecture", where=where) from None


class _NoMatch(InputError):
    """An index (or one nested in it) has no manifest for the platform asked for."""


def _find(
    files: Files,
    desc: Descriptor,
    target: Platform,
    parent: Descriptor | None,
    lenient: bool,
    budget: DocumentBudget | None = None,
    depth: int = 0,
) -> tuple[Descriptor, Descriptor | None]:
    if desc.media_type in MANIFEST_MEDIA_TYPES:
        return desc, parent
    if desc.media_type not in INDEX_MEDIA_TYPES:
        raise InputError(f"{desc.digest} is a {desc.media_type}, not an image", where=files.where)
    # image-index.md sets no bound on nesting or fan-out: each index is searched once (an index that
    # had no match has none the next time it is listed), at most MAX_NESTING levels deep, and the
    # image may hold at most BASTION_MAX_DOCUMENTS documents.
    budget = budget if budget is not None else DocumentBudget(files.where)
    if depth > MAX_NESTING:
        raise IntegrityError(f"index {desc.digest} nests more than {MAX_NESTING} levels", where=files.where)
    budget.first_visit(desc.digest)
    data = read_verified(files, blob_name(desc.digest), desc.digest, "index")
    children = parse_index(data, where=desc.digest).manifests
    images = [c for c in children if c.platform is None or not c.platform.is_unknown]
    available: list[str] = []
    for child in images:
        if child.media_type in INDEX_MEDIA_TYPES:
            if child.digest in budget.seen:
                continue
            with contextlib.suppress(_NoMatch):
                return _find(files, child, target, desc, lenient, budget, depth + 1)
        elif child.platform is not None:
            if child.platform.matches(target):
                return child, desc
            available.append(str(child.platform))
    manifests = [c for c in images if c.media_type in MANIFEST_MEDIA_TYPES]
    if lenient and len(manifests) == 1 and manifests[0].platform is None:
        return manifests[0], desc
    raise _NoMatch(
        f"image {desc.digest} has no manifest for {target}",
        where=files.where,
        hint="platforms: " + (", ".join(sorted(set(available))) or "none recorded") + "; use --platform",
    )
