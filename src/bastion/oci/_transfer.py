"""Whole images between the local store and registries: push, pull and copy, digests unchanged.

Order matters for consumers that look at a registry or store mid-transfer: blobs go first, then the
manifests that reference them, then the index, and the tag last, so a tag only ever names a complete
image. A pull checks every document and blob against its digest (and the size its descriptor states)
before it enters the store, and tags only once everything is in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from bastion.errors import InputError, IntegrityError, NetworkError
from bastion.oci._http import Readable
from bastion.oci._limits import walk_index
from bastion.oci._model import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    Descriptor,
    parse_manifest,
)
from bastion.oci._reference import Reference, parse_reference
from bastion.oci._registry import RegistryClient
from bastion.oci._store import Store, check_ref

_MAX_REFERRER_DEPTH = 4  # signatures of attestations of an image, and so on


@dataclass
class TransferStats:
    """What a transfer did: blobs sent or fetched, skipped because present, mounted."""

    transferred: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0

    def count(self, outcome: str, size: int) -> None:
        if outcome == "uploaded":
            self.transferred += 1
            self.bytes += size
        elif outcome == "mounted":
            self.mounted += 1
        else:
            self.skipped += 1


def _target(client: RegistryClient, ref: Reference | str) -> Reference:
    parsed = ref if isinstance(ref, Reference) else parse_reference(ref)
    if _registry_key(parsed.registry) != _registry_key(client.registry):
        raise InputError(f"{parsed} is not on registry {client.registry}")
    return parsed


def _registry_key(registry: str) -> str:
    return registry.lower().removesuffix(":443")


def push_image(
    store: Store,
    local_ref_or_digest: str,
    remote_ref: Reference | str,
    client: RegistryClient,
    *,
    mount_from: str | None = None,
    stats: TransferStats | None = None,
) -> Descriptor:
    """Push an image (index, platform manifests, configs, layers) from the store and tag it.

    Blobs and manifests the registry already has are skipped; ``mount_from`` names a repository on the
    same registry to mount blobs from. Returns the pushed top-level descriptor (same digest as local).
    """
    stats = stats if stats is not None else TransferStats()
    target = _target(client, remote_ref)
    desc = store.resolve(local_ref_or_digest)
    if target.digest is not None and target.digest != desc.digest:
        raise InputError(f"{local_ref_or_digest} is {desc.digest}, not {target.digest} as {target} asks")
    repo = target.repository
    items = list(store.walk(desc))
    documents = [d for d in items if d.media_type in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES]
    for item in items:
        if item.media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
            # put_blob checks the file against the descriptor as it sends it: a rotten blob is refused.
            outcome = client.put_blob(repo, item, store.blob_path(item.digest), mount_from=mount_from)
            stats.count(outcome, item.size)
    for item in reversed(documents[1:]):  # manifests before the index that lists them
        if client.head_manifest(repo, item.digest) is None:
            client.put_manifest(repo, item.digest, store.read_blob(item.digest), item.media_type)
    data = store.read_blob(desc.digest)
    return client.put_manifest(repo, target.tag or target.digest or "latest", data, desc.media_type)


def pull_image(
    client: RegistryClient,
    remote_ref: Reference | str,
    store: Store,
    tag: str | None = None,
    *,
    stats: TransferStats | None = None,
) -> Descriptor:
    """Pull an image with every platform into the store and tag it ``tag`` (default: the reference).

    Nothing is tagged unless every document and blob arrived and matched its digest.
    """
    stats = stats if stats is not None else TransferStats()
    source = _target(client, remote_ref)
    name = check_ref(tag or str(source))
    repo = source.repository
    top, data = client.get_manifest(repo, source.ref)
    documents: list[tuple[Descriptor, bytes]] = []

    def fetch_blob(blob: Descriptor) -> None:
        if store.has_blob(blob.digest):
            stats.count("exists", blob.size)
            return
        for attempt in range(client.retry.attempts + 1):
            try:
                with store.blob_writer(blob.media_type) as writer:
                    client.get_blob(repo, blob.digest, writer, size=blob.size)
                    writer.commit(blob.digest, blob.size)
                stats.count("uploaded", blob.size)
                return
            except NetworkError:
                if attempt >= client.retry.attempts:
                    raise
                client.retry_sleep(attempt)

    for desc, doc in _documents(client, repo, top, data):
        documents.append((desc, doc))
        if desc.media_type in MANIFEST_MEDIA_TYPES:
            manifest = parse_manifest(doc, where=desc.digest)
            for blob in (manifest.config, *manifest.layers):
                fetch_blob(blob)
    for desc, doc in reversed(documents):  # children before the index that lists them
        if not store.has_blob(desc.digest):
            store.put_blob(doc, desc.media_type)
    return store.tag(name, top)


def _documents(
    client: RegistryClient, repo: str, top: Descriptor, data: bytes
) -> Iterator[tuple[Descriptor, bytes]]:
    """``top`` and every manifest under it, each once, verified against the descriptor that names it
    (image-spec descriptor.md "Verification"); bounded in depth and count by :func:`walk_index`."""
    read: dict[str, bytes] = {top.digest: data}

    def fetch(desc: Descriptor) -> bytes:
        if desc.digest not in read:
            got, child_data = client.get_manifest(repo, desc.digest)
            if got.size != desc.size:
                raise IntegrityError(
                    f"manifest {desc.digest} is {got.size} bytes, the index says {desc.size}"
                )
            read[desc.digest] = child_data
        return read.pop(desc.digest)

    for visit in walk_index(top, fetch, where=f"{client.registry}/{repo}@{top.digest}"):
        desc = visit.descriptor
        if visit.parent is not None and desc.media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
            raise IntegrityError(f"index {visit.parent.digest} lists a {desc.media_type}, not a manifest")
        plain = desc if visit.parent is None else Descriptor(desc.media_type, desc.digest, desc.size)
        yield plain, visit.data if visit.data is not None else fetch(desc)


def copy_image(
    src_client: RegistryClient,
    src_ref: Reference | str,
    dst_client: RegistryClient,
    dst_ref: Reference | str,
    *,
    with_referrers: bool = False,
    stats: TransferStats | None = None,
) -> Descriptor:
    """Copy an image between repositories or registries, streaming each blob (never a whole image in
    memory) and verifying it on the way. With ``with_referrers``, the artifacts attached to each
    manifest (and to those artifacts, a few levels deep) are copied and attached at the destination."""
    stats = stats if stats is not None else TransferStats()
    source = _target(src_client, src_ref)
    target = _target(dst_client, dst_ref)
    src_repo, dst_repo = source.repository, target.repository
    same_registry = _registry_key(src_client.registry) == _registry_key(dst_client.registry)
    mount_from = src_repo if same_registry and src_repo != dst_repo else None
    top, data = src_client.get_manifest(src_repo, source.ref)
    if target.digest is not None and target.digest != top.digest:
        raise InputError(f"{source} is {top.digest}, not {target.digest} as {target} asks")

    def copy_blobs(manifest_bytes: bytes, where: str) -> None:
        manifest = parse_manifest(manifest_bytes, where=where)
        for blob in (manifest.config, *manifest.layers):
            opener = _blob_opener(src_client, src_repo, blob)
            stats.count(dst_client.put_blob(dst_repo, blob, opener, mount_from=mount_from), blob.size)

    documents = list(_documents(src_client, src_repo, top, data))
    for desc, doc in reversed(documents):
        if desc.media_type in MANIFEST_MEDIA_TYPES:
            copy_blobs(doc, desc.digest)
        if desc.digest != top.digest and dst_client.head_manifest(dst_repo, desc.digest) is None:
            dst_client.put_manifest(dst_repo, desc.digest, doc, desc.media_type)
    pushed = dst_client.put_manifest(
        dst_repo, target.tag or target.digest or top.digest, data, top.media_type
    )
    if with_referrers:
        seen: set[str] = set()
        pending = [(d.digest, 0) for d, _ in documents]
        while pending:
            subject_digest, depth = pending.pop()
            if subject_digest in seen or depth >= _MAX_REFERRER_DEPTH:
                continue
            seen.add(subject_digest)
            for ref in src_client.referrers(src_repo, subject_digest):
                ref_desc, ref_data = src_client.get_manifest(src_repo, ref.digest)
                artifact = parse_manifest(ref_data, where=ref.digest)
                if artifact.subject is None or artifact.subject.digest != subject_digest:
                    raise IntegrityError(f"referrer {ref.digest} does not have {subject_digest} as subject")
                copy_blobs(ref_data, ref.digest)
                dst_client.attach(dst_repo, ref_data, ref_desc, artifact.subject)
                pending.append((ref.digest, depth + 1))
    return pushed


def _blob_opener(
    client: RegistryClient, repo: str, blob: Descriptor
) -> Callable[[], AbstractContextManager[Readable]]:
    @contextlib.contextmanager
    def opener() -> Iterator[Readable]:
        with client.open_blob(repo, blob.digest, blob.size) as reader:
            yield reader

    return opener
