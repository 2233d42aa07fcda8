"""Images with their attestations between the local store and registries: push, pull, mirror.

The image itself moves with :func:`bastion.oci.push_image`, :func:`~bastion.oci.pull_image` and
:func:`~bastion.oci.copy_image` (digests unchanged). What is attached to the index and to each platform
manifest moves with it, as any OCI 1.1 artifact with a ``subject`` (Sigstore bundles and anything
else, and what is attached to those, a few levels deep):

* push: the artifact's blobs, then :meth:`RegistryClient.attach` (the referrers API where the registry
  has one, else the ``sha256-<hex>`` fallback tag is kept up to date);
* pull: every artifact is read and checked against its digest, stored, and recorded with
  :meth:`Store.attach`, before the image is pulled and tagged (so the tag is the last thing written
  and a failed pull leaves no tag);
* mirror: :func:`copy_image` with referrers, then cosign's legacy ``.att``/``.sig`` tags of each digest
  copied as they are (their names hold the digests, which do not change).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bastion.attest._legacy import legacy_tag
from bastion.errors import IntegrityError
from bastion.oci import (
    INDEX_MEDIA_TYPES,
    Descriptor,
    DocumentBudget,
    Store,
    parse_manifest,
    parse_reference,
    walk_index,
)

if TYPE_CHECKING:
    from bastion.oci import RegistryClient, TransferStats

_MAX_DEPTH = 4  # signatures of attestations of an image, and so on


@dataclass
class Published:
    """What a transfer moved: the image's top descriptor and how many artifacts came along."""

    descriptor: Descriptor
    artifacts: int = 0
    legacy_tags: list[str] = field(default_factory=list)


def push(
    store: Store, image: str, remote: str, client: RegistryClient, *, stats: TransferStats | None = None
) -> Published:
    """Push ``image`` from the store to ``remote`` with everything attached to its documents."""
    from bastion.oci import push_image

    target = parse_reference(remote)
    pushed = push_image(store, image, target, client, stats=stats)
    result = Published(pushed)
    documents = [
        d for d in store.walk(store.resolve(image)) if d.media_type in INDEX_MEDIA_TYPES or _is_manifest(d)
    ]
    for subject in documents:
        result.artifacts += _push_referrers(store, client, target.repository, subject, 0)
    return result


def _push_referrers(store: Store, client: RegistryClient, repo: str, subject: Descriptor, depth: int) -> int:
    if depth >= _MAX_DEPTH:
        return 0
    count = 0
    for entry in store.referrers(subject.digest):
        data = store.read_blob(entry.digest)
        manifest = parse_manifest(data, where=entry.digest)
        if manifest.subject is None or manifest.subject.digest != subject.digest:
            raise IntegrityError(
                f"stored artifact {entry.digest} does not name {subject.digest} as its subject"
            )
        for blob in (manifest.config, *manifest.layers):
            # put_blob checks the file against its descriptor while sending it.
            client.put_blob(repo, blob, store.blob_path(blob.digest))
        plain = Descriptor(entry.media_type, entry.digest, entry.size)
        client.attach(repo, data, plain, Descriptor(subject.media_type, subject.digest, subject.size))
        count += 1 + _push_referrers(store, client, repo, plain, depth + 1)
    return count


def pull(
    client: RegistryClient,
    remote: str,
    store: Store,
    tag: str | None = None,
    *,
    stats: TransferStats | None = None,
) -> Published:
    """Pull ``remote`` with every platform and everything attached, and tag it ``tag`` (default: the
    reference as written)."""
    from bastion.oci import pull_image

    source = parse_reference(remote)
    repo = source.repository
    top, data = client.get_manifest(repo, source.ref)
    count = 0
    # One budget for the image's documents and the artifacts attached to them: each read once.
    budget = DocumentBudget(f"{client.registry}/{repo}@{top.digest}")
    for subject in list(_documents(client, repo, top, data, budget)):
        count += _pull_referrers(client, repo, store, subject, 0, budget)
    # Pinned to the digest just read, so a tag moved meanwhile cannot pair these attestations with
    # another image.
    pinned = source.with_ref(digest=top.digest)
    name = tag or str(source)
    return Published(pull_image(client, pinned, store, name, stats=stats), count)


def _pull_referrers(
    client: RegistryClient, repo: str, store: Store, subject: Descriptor, depth: int, budget: DocumentBudget
) -> int:
    if depth >= _MAX_DEPTH:
        return 0
    count = 0
    for entry in client.referrers(repo, subject.digest):
        if not budget.first_visit(entry.digest):
            continue
        got, data = client.get_manifest(repo, entry.digest)  # checked against the digest asked for
        manifest = parse_manifest(data, where=entry.digest)
        if manifest.subject is None or manifest.subject.digest != subject.digest:
            raise IntegrityError(f"referrer {entry.digest} does not name {subject.digest} as its subject")
        for blob in (manifest.config, *manifest.layers):
            if store.has_blob(blob.digest):
                continue
            with store.blob_writer(blob.media_type) as writer:
                client.get_blob(repo, blob.digest, writer, size=blob.size)
                writer.commit(blob.digest, blob.size)
        store.put_blob(data, got.media_type)
        artifact_type = entry.artifact_type or manifest.artifact_type or manifest.config.media_type
        recorded = Descriptor(
            got.media_type, got.digest, got.size, {**manifest.annotations, **entry.annotations},
            artifact_type=artifact_type,
        )  # fmt: skip
        store.attach(recorded, subject.digest)
        count += 1 + _pull_referrers(
            client, repo, store, Descriptor(got.media_type, got.digest, got.size), depth + 1, budget
        )
    return count


def mirror(
    src_client: RegistryClient,
    src: str,
    dst_client: RegistryClient,
    dst: str,
    *,
    stats: TransferStats | None = None,
) -> Published:
    """Copy ``src`` to ``dst`` (all platforms, digests unchanged) with every referrer and cosign's
    legacy ``.att``/``.sig`` tags."""
    from bastion.oci import copy_image

    source, target = parse_reference(src), parse_reference(dst)
    top, data = src_client.get_manifest(source.repository, source.ref)
    documents = list(_documents(src_client, source.repository, top, data))
    pinned = source.with_ref(digest=top.digest)
    copied = copy_image(src_client, pinned, dst_client, target, with_referrers=True, stats=stats)
    result = Published(copied)
    for document in documents:
        result.artifacts += _count_referrers(src_client, source.repository, document.digest, 0)
        kinds: tuple[Literal["att", "sig"], ...] = ("att", "sig")
        for kind in kinds:
            tag = legacy_tag(document.digest, kind)
            if src_client.head_manifest(source.repository, tag) is None:
                continue
            copy_image(
                src_client, source.with_ref(tag=tag), dst_client, target.with_ref(tag=tag), stats=stats
            )
            result.legacy_tags.append(tag)
    return result


def _count_referrers(client: RegistryClient, repo: str, digest: str, depth: int) -> int:
    if depth >= _MAX_DEPTH:
        return 0
    return sum(
        1 + _count_referrers(client, repo, d.digest, depth + 1) for d in client.referrers(repo, digest)
    )


def _documents(
    client: RegistryClient, repo: str, top: Descriptor, data: bytes, budget: DocumentBudget | None = None
) -> Iterator[Descriptor]:
    """``top`` and the manifests and indexes under it, each once (indexes read and checked against
    their digests; depth and count bounded by :func:`bastion.oci.walk_index`)."""

    def read(desc: Descriptor) -> bytes:
        return data if desc.digest == top.digest else client.get_manifest(repo, desc.digest)[1]

    where = f"{client.registry}/{repo}@{top.digest}"
    for visit in walk_index(top, read, where=where, budget=budget):
        desc = visit.descriptor
        yield desc if visit.parent is None else Descriptor(desc.media_type, desc.digest, desc.size)


def _is_manifest(desc: Descriptor) -> bool:
    from bastion.oci import MANIFEST_MEDIA_TYPES

    return desc.media_type in MANIFEST_MEDIA_TYPES
