"""The local image store: one OCI image layout directory (image-layout.md) holding many repositories.

Layout::

    <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
    <root>/index.json          one descriptor per tag, sorted by tag
    <root>/blobs/sha256/<hex>  content-addressed blobs
    <root>/.lock               cross-process lock for index.json updates (not part of the OCI layout)

A tag is the ``org.opencontainers.image.ref.name`` annotation of an ``index.json`` entry and holds a
*full* reference name such as ``bastion/python:3.11``; that is how one layout holds many repositories.
Tools read it directly: ``skopeo inspect oci:<root>:bastion/python:3.11``.

Concurrency and crashes: blobs are written to ``.tmp-*`` files in the blobs directory and renamed into
place once their digest is checked, so a blob path only ever holds complete, verified content and no lock
is needed. ``index.json`` is rewritten the same way (temp file, fsync, ``os.replace``) while ``.lock`` is
held, so concurrent taggers never lose each other's updates. An interrupted writer leaves only ``.tmp-*``
files, which nothing reads and :meth:`Store.gc` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import filelock

from bastion._atomic import TMP_PREFIX, atomic_write
from bastion.errors import InputError, IntegrityError, InternalError
from bastion.identifiers import ANNOTATION_SUBJECT
from bastion.oci._files import CHUNK, BlobWriter, hash_file, publish
from bastion.oci._model import (
    ANNOTATION_REF_NAME,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_OCTET_STREAM,
    Descriptor,
    Index,
    Manifest,
    canonical_json,
    check_digest,
    parse_index,
    parse_manifest,
)

LAYOUT_VERSION = "1.0.0"
MAX_DOCUMENT_SIZE = 4 * 1024 * 1024  # manifests/indexes/configs; the distribution spec's usual limit
_LOCK_TIMEOUT = 120.0
# image-layout.md "index.json": grammar of org.opencontainers.image.ref.name.
_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DIGEST_IN_REF = re.compile(r"(?:.*@)?(sha256:[a-f0-9]{64})")


class Store:
    """An OCI image layout at ``root``; created on first use unless ``create`` is false."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = root
        self.blobs_dir = root / "blobs" / "sha256"
        self._index_path = root / "index.json"
        self._layout_path = root / "oci-layout"
        if not self._layout_path.exists():
            if not create:
                raise InputError(f"no OCI image layout at {root}", hint="missing oci-layout file")
            self.blobs_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self._layout_path, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
        self._check_layout()
        self._lock = filelock.FileLock(str(root / ".lock"), timeout=_LOCK_TIMEOUT)
        if not create:
            # Opened to read a layout someone else made (``oci-dir://``): reading writes nothing into
            # it; a missing index.json reads as empty (``index``) and the first write makes the rest.
            return
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        if not self._index_path.exists():
            with self._locked():
                if not self._index_path.exists():
                    self._write_index(Index(MEDIA_TYPE_INDEX, ()))

    # -- blobs ---------------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / check_digest(digest).removeprefix("sha256:")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_writer(self, media_type: str = MEDIA_TYPE_OCTET_STREAM) -> BlobWriter:
        self.blobs_dir.mkdir(parents=True, exist_ok=True)  # a layout opened to read may have none yet
        return BlobWriter(self.blobs_dir, media_type)

    def put_blob(self, data: bytes, media_type: str = MEDIA_TYPE_OCTET_STREAM) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.has_blob(digest):
            return Descriptor(media_type, digest, len(data))
        with self.blob_writer(media_type) as writer:
            writer.write(data)
            return writer.commit()

    def put_json(self, obj: object, media_type: str) -> Descriptor:
        """Store ``obj`` serialised with :func:`canonical_json`."""
        return self.put_blob(canonical_json(obj), media_type)

    def put_blob_stream(
        self, reader: BinaryIO, digest: str, size: int, media_type: str = MEDIA_TYPE_OCTET_STREAM
    ) -> Descriptor:
        """Copy a blob from ``reader``, refusing it unless it has the given digest and size."""
        check_digest(digest)
        with self.blob_writer(media_type) as writer:
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
                if writer.size > size:
                    break
            return writer.commit(digest, size)

    def put_blob_file(
        self, tmp_path: Path, digest: str, size: int, media_type: str = MEDIA_TYPE_OCTET_STREAM
    ) -> Descriptor:
        """Move the file ``tmp_path`` into the store after checking its digest and size.

        The file is consumed (renamed, or removed if the blob is already present or does not match). A
        file outside the blobs directory is copied, since a rename across file systems is not atomic.
        """
        check_digest(digest)
        if tmp_path.resolve().parent != self.blobs_dir.resolve():
            try:
                with tmp_path.open("rb") as f:
                    return self.put_blob_stream(f, digest, size, media_type)
            finally:
                tmp_path.unlink(missing_ok=True)
        actual, actual_size = hash_file(tmp_path)
        if actual != digest or actual_size != size:
            tmp_path.unlink(missing_ok=True)
            raise IntegrityError(
                f"{tmp_path.name} is {actual} ({actual_size} bytes), expected {digest} ({size})"
            )
        with tmp_path.open("rb") as f:
            os.fsync(f.fileno())
        publish(tmp_path, self.blob_path(digest))
        return Descriptor(media_type, digest, size)

    def open_blob(self, digest: str) -> BinaryIO:
        """Open a blob for streaming; the caller verifies it (e.g. through :meth:`put_blob_stream`)."""
        try:
            return self.blob_path(digest).open("rb")
        except FileNotFoundError:
            raise InputError(f"blob {digest} is not in the store at {self.root}") from None

    def read_blob(self, digest: str, *, max_size: int = MAX_DOCUMENT_SIZE) -> bytes:
        """Read a small blob into memory and check it against its digest."""
        with self.open_blob(digest) as f:
            data = f.read(max_size + 1)
        if len(data) > max_size:
            raise InputError(f"blob {digest} is larger than {max_size} bytes", hint="stream it instead")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(
                f"blob {digest} in {self.root} does not match its digest", hint="the store is corrupted"
            )
        return data

    def verify_blob(self, desc: Descriptor) -> None:
        """Re-hash a stored blob of any size and check it against ``desc``."""
        try:
            digest, size = hash_file(self.blob_path(desc.digest))
        except FileNotFoundError:
            raise InputError(f"blob {desc.digest} is not in the store at {self.root}") from None
        if digest != desc.digest or size != desc.size:
            raise IntegrityError(
                f"blob {desc.digest} in {self.root} does not match its descriptor",
                hint="the store is corrupted",
            )

    def read_manifest(self, desc: Descriptor) -> Manifest:
        return parse_manifest(self.read_blob(desc.digest), where=desc.digest)

    def read_index(self, desc: Descriptor) -> Index:
        return parse_index(self.read_blob(desc.digest), where=desc.digest)

    def walk(self, desc: Descriptor, *, missing_ok: bool = False) -> Iterator[Descriptor]:
        """``desc`` and every blob it references (index → manifests → config, layers), each once.

        ``subject`` is not followed: an artifact does not own the image it is attached to.
        """
        seen: set[str] = set()
        stack = [desc]
        while stack:
            current = stack.pop()
            if current.digest in seen:
                continue
            seen.add(current.digest)
            if missing_ok and not self.has_blob(current.digest):
                continue
            yield current
            if current.media_type in INDEX_MEDIA_TYPES:
                stack.extend(reversed(self.read_index(current).manifests))
            elif current.media_type in MANIFEST_MEDIA_TYPES:
                manifest = self.read_manifest(current)
                stack.extend(reversed((manifest.config, *manifest.layers)))

    # -- tags ------------------------------------------------------------------------------------------

    def index(self) -> Index:
        """The top-level ``index.json``; readers need no lock since writers replace it atomically."""
        try:
            data = self._index_path.read_bytes()
        except FileNotFoundError:
            return Index(MEDIA_TYPE_INDEX, ())
        return parse_index(data, where=str(self._index_path))

    def list_tags(self) -> dict[str, Descriptor]:
        """Tag → descriptor; attached artifacts (untagged entries) are not tags."""
        return {d.ref_name: d for d in self.index().manifests if d.ref_name is not None}

    def tag(self, ref: str, descriptor: Descriptor) -> Descriptor:
        """Point ``ref`` at ``descriptor`` (a manifest or index already in the store)."""
        check_ref(ref)
        if not self.has_blob(descriptor.digest):
            raise InternalError(f"cannot tag {ref}: blob {descriptor.digest} is not in the store")
        entry = descriptor.with_annotations({**descriptor.annotations, ANNOTATION_REF_NAME: ref})
        with self._locked():
            index = self.index()
            kept = [d for d in index.manifests if d.ref_name != ref]
            self._write_index(Index(index.media_type, (*kept, entry), index.annotations))
        return entry

    def remove_tag(self, ref: str) -> Descriptor:
        with self._locked():
            index = self.index()
            found = [d for d in index.manifests if d.ref_name == ref]
            if not found:
                raise self._unknown(ref)
            kept = tuple(d for d in index.manifests if d.ref_name != ref)
            self._write_index(Index(index.media_type, kept, index.annotations))
        return found[0]

    # -- referrers (attached artifacts) ----------------------------------------------------------------

    def attach(self, artifact: Descriptor, subject: str) -> Descriptor:
        """Record ``artifact`` (a manifest already in the store whose ``subject`` is ``subject``) as a
        referrer of ``subject``: an untagged ``index.json`` entry carrying its ``artifactType`` and the
        subject digest in :data:`ANNOTATION_SUBJECT`, so listing referrers reads no manifest. The OCI
        image layout has no referrers API; an entry in ``index.json`` also keeps the artifact from
        :meth:`gc`. Attaching the same artifact twice keeps one entry."""
        check_digest(subject)
        if not self.has_blob(artifact.digest):
            raise InternalError(f"cannot attach {artifact.digest}: it is not in the store")
        entry = artifact.with_annotations({**artifact.annotations, ANNOTATION_SUBJECT: subject})
        with self._locked():
            index = self.index()
            kept = [d for d in index.manifests if not (d.digest == entry.digest and d.ref_name is None)]
            self._write_index(Index(index.media_type, (*kept, entry), index.annotations))
        return entry

    def referrers(self, subject: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Artifacts attached to ``subject``, in the order they were attached."""
        return [
            d
            for d in self.index().manifests
            if d.ref_name is None
            and d.annotations.get(ANNOTATION_SUBJECT) == subject
            and (artifact_type is None or d.artifact_type == artifact_type)
        ]

    def resolve(self, ref_or_digest: str) -> Descriptor:
        """Find an image by tag, by ``sha256:<hex>`` or by ``name@sha256:<hex>`` (:meth:`find`); an
        unknown name is an :class:`InputError` listing the store's tags."""
        found = self.find(ref_or_digest)
        if found is None:
            raise self._unknown(ref_or_digest)
        return found

    def find(self, ref_or_digest: str) -> Descriptor | None:
        """The image ``ref_or_digest`` names, or None when the store has no such name.

        A tag is matched exactly first, then as the last part of a full name (``python:3.11`` finds
        ``bastion/python:3.11``); a name without a tag means ``:latest``. ``name@sha256:<hex>`` must
        name the repository (the same way) of a tagged image that is, or lists, that digest. A short
        name that several repositories end with is an :class:`InputError` listing them: naming one
        repository's image must never silently find another's.
        """
        pinned = _DIGEST_IN_REF.fullmatch(ref_or_digest)
        if pinned:
            desc = self._by_digest(pinned.group(1), ref_or_digest)
            name = ref_or_digest.rpartition("@")[0]
            if desc is not None and name and not self._holds(_repository(name), desc.digest, ref_or_digest):
                return None  # another repository's image (or a registry's, for a registry reference)
            return desc
        tags = self.list_tags()
        wanted = [ref_or_digest]
        if ":" not in ref_or_digest.rsplit("/", 1)[-1]:
            wanted.append(ref_or_digest + ":latest")
        for name in wanted:
            if name in tags:
                return tags[name]
        for name in wanted:
            matches = sorted(t for t in tags if t.endswith("/" + name))
            if len(matches) == 1:
                return tags[matches[0]]
            if matches:
                raise _ambiguous(ref_or_digest, matches)
        return None

    def gc(self, *, grace_seconds: float = 3600.0) -> list[str]:
        """Remove blobs no tag reaches, and abandoned temp files, older than ``grace_seconds``.

        The grace period protects blobs that a concurrent build has written but not yet tagged.
        """
        removed: list[str] = []
        cutoff = time.time() - grace_seconds
        with self._locked():
            live: set[str] = set()
            for entry in self.index().manifests:
                live.update(d.digest for d in self.walk(entry, missing_ok=True))
            for path in sorted(self.blobs_dir.iterdir()):
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime >= cutoff:
                        continue
                    if path.name.startswith(TMP_PREFIX):
                        path.unlink()
                    elif "sha256:" + path.name not in live:
                        path.unlink()
                        removed.append("sha256:" + path.name)
        return removed

    # -- internals -------------------------------------------------------------------------------------

    def _by_digest(self, digest: str, asked: str) -> Descriptor | None:
        for entry in self.index().manifests:
            if entry.digest == digest:
                return entry
        if not self.has_blob(digest):
            return None
        data = self.read_blob(digest)
        try:
            media_type = json.loads(data).get("mediaType")
        except (ValueError, AttributeError):
            media_type = None
        if media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
            raise InputError(f"{asked} is a blob in the store but not an image manifest or index")
        return Descriptor(str(media_type), digest, len(data))

    def _holders(self, digest: str) -> dict[str, list[str]]:
        """Repository → its tags that are ``digest`` or an index listing it (a platform manifest)."""
        holders: dict[str, list[str]] = {}
        for tag, entry in sorted(self.list_tags().items()):
            listed = entry.digest == digest or (
                entry.media_type in INDEX_MEDIA_TYPES
                and self.has_blob(entry.digest)
                and any(m.digest == digest for m in self.read_index(entry).manifests)
            )
            if listed:
                holders.setdefault(_repository(tag), []).append(tag)
        return holders

    def _holds(self, repository: str, digest: str, asked: str) -> bool:
        """Whether ``repository`` (the whole name, or the last part of one) holds ``digest``."""
        holders = self._holders(digest)
        named = sorted(r for r in holders if r == repository or r.endswith("/" + repository))
        if repository in holders or len(named) == 1:
            return True
        if named:
            raise _ambiguous(asked, named)
        return False

    def _unknown(self, ref: str) -> InputError:
        pinned = _DIGEST_IN_REF.fullmatch(ref)
        if pinned:  # the digest is here under another name: say which
            held = [t for tags in self._holders(pinned.group(1)).values() for t in tags]
            if held:
                return InputError(
                    f"unknown image {ref!r}", hint=f"{pinned.group(1)} is tagged {', '.join(held)}"
                )
        tags = sorted(self.list_tags())
        hint = "available: " + ", ".join(tags) if tags else f"the store at {self.root} has no images"
        return InputError(f"unknown image {ref!r}", hint=hint)

    def _check_layout(self) -> None:
        try:
            version = json.loads(self._layout_path.read_bytes()).get("imageLayoutVersion")
        except (OSError, ValueError, AttributeError):
            version = None
        if version != LAYOUT_VERSION:
            raise IntegrityError(f"unsupported OCI layout version {version!r}", where=str(self._layout_path))

    def _write_index(self, index: Index) -> None:
        entries = sorted(index.manifests, key=lambda d: (d.ref_name is None, d.ref_name or "", d.digest))
        doc: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [d.to_json() for d in entries],
        }
        if index.annotations:
            doc["annotations"] = dict(index.annotations)
        atomic_write(self._index_path, canonical_json(doc))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except filelock.Timeout:
            raise InternalError(
                f"the store at {self.root} is locked",
                hint=f"another bastion process holds {self._lock.lock_file}",
            ) from None


def _repository(name: str) -> str:
    """``bastion/python:3.11`` → ``bastion/python`` (a port in a registry host is not a tag)."""
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def _ambiguous(asked: str, candidates: list[str]) -> InputError:
    return InputError(f"image name {asked!r} is ambiguous", hint="use one of: " + ", ".join(candidates))


def find_in_store(store_dir: Path, reference: str) -> tuple[Store, Descriptor] | None:
    """The local store at ``store_dir`` and the image ``reference`` names there (:meth:`Store.find`),
    or None when there is no store or no such name; an ambiguous name raises. Every command that takes
    a store name resolves it here, so all of them mean the same image by it."""
    if not (store_dir / "oci-layout").is_file():
        return None
    store = Store(store_dir, create=False)
    found = store.find(reference)
    return None if found is None else (store, found)


def open_in_store(store_dir: Path, reference: str) -> tuple[Store, Descriptor]:
    """:func:`find_in_store`, refusing a name the store does not have (listing the store's tags)."""
    found = find_in_store(store_dir, reference)
    if found is not None:
        return found
    if not (store_dir / "oci-layout").is_file():
        raise InputError(f"unknown image {reference!r}", hint=f"the store at {store_dir} is empty")
    raise Store(store_dir, create=False)._unknown(reference)


def check_ref(ref: str) -> str:
    """Return ``ref`` if it is a valid ``org.opencontainers.image.ref.name`` (image-layout.md)."""
    if not _REF_RE.fullmatch(ref):
        raise InputError(f"not a valid image reference name: {ref!r}", hint="e.g. bastion/python:3.11")
    return ref
