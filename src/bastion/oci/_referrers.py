"""Referrers: the OCI distribution spec v1.1 referrers API, and the fallback tag where there is none.

``spec.md`` "Listing Referrers": ``GET /v2/<name>/referrers/<digest>`` answers 200 with an image index
of the manifests whose ``subject`` is ``<digest>``; a registry without the API answers 404. Then the
"Referrers Tag Schema" applies: the tag ``<alg>-<ref>`` (``sha256-<hex>``, truncated to 128 characters)
holds an image index of referrer descriptors, each with the referrer's ``artifactType`` and annotations.

Pushing a manifest with a ``subject`` ("Pushing Manifests with Subject"): a registry with the API
answers with an ``OCI-Subject`` header; otherwise the client must update the fallback index itself.

Concurrency of the fallback update. The tag is a read-modify-write of one shared document. We send
``If-Match`` with the ETag we read (a registry that honours it answers 412 to a stale write, and we read
again); docker-registry 2.8 ignores it, so we also verify: after writing, wait a short settle time
(twice our own read-modify-write time, with jitter), read the tag again and, if any entry we wrote is
gone, merge it back and write again (bounded). Two writers that race both end up in the index unless one
of them takes longer than the other's settle time between reading and writing; the window is small, not
zero, and no registry without a conditional PUT allows closing it. An entry removed on purpose by
someone else while we are writing may come back; that is the price of never losing one.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from bastion.errors import InputError, NetworkError
from bastion.oci._http import expect, read_limited, sha256_digest
from bastion.oci._model import (
    INDEX_MEDIA_TYPES,
    MEDIA_TYPE_INDEX,
    Descriptor,
    canonical_json,
    check_digest,
    image_index,
    parse_index,
    parse_manifest,
)
from bastion.oci._reference import check_repository

if TYPE_CHECKING:
    from bastion.oci._registry import RegistryClient

_FALLBACK_ATTEMPTS = 8
_MAX_INDEX = 4 * 1024 * 1024
_MAX_PAGES = 1000


def fallback_tag(digest: str) -> str:
    """spec.md "Referrers Tag Schema": ``<alg>-<ref>``, truncated to 128 characters."""
    algorithm, _, encoded = check_digest(digest).partition(":")
    return f"{algorithm}-{encoded}"[:128]


def list_referrers(
    client: RegistryClient, repo: str, digest: str, artifact_type: str | None = None
) -> list[Descriptor]:
    found = _from_api(client, repo, digest, artifact_type)
    if found is None:
        found = read_fallback(client, repo, digest)[0]
    # The registry may ignore the artifactType filter (it says so by omitting OCI-Filters-Applied).
    return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]


def _from_api(
    client: RegistryClient, repo: str, digest: str, artifact_type: str | None
) -> list[Descriptor] | None:
    """The referrers API's answer, following ``Link`` pages; ``None`` when the registry has no API."""
    what = f"referrers of {client.registry}/{repo}@{digest}"
    path = f"/v2/{check_repository(repo)}/referrers/{check_digest(digest)}"
    if artifact_type:
        from urllib.parse import quote

        path += "?artifactType=" + quote(artifact_type, safe="")
    out: list[Descriptor] = []
    for page in range(_MAX_PAGES):
        with client.open_raw("GET", path, scope=f"repository:{repo}:pull", accept=MEDIA_TYPE_INDEX) as resp:
            content_type = resp.headers.get("content-type", "").split(";")[0].strip()
            # spec.md: "a registry that does not support the referrers API will return a 404"; anything
            # that is not an index (an HTML error page from a proxy) is treated the same way.
            if page == 0 and (
                resp.status_code == 404 or (resp.status_code == 200 and content_type not in INDEX_MEDIA_TYPES)
            ):
                return None
            expect(resp, {200}, what)
            index = parse_index(read_limited(resp, _MAX_INDEX, what), where=what)
            out.extend(index.manifests)
            link = resp.links.get("next", {}).get("url")
            if not link:
                return out
            path = str(resp.request.url.join(link))
    raise NetworkError(f"{what}: too many pages")


def read_fallback(client: RegistryClient, repo: str, digest: str) -> tuple[list[Descriptor], str | None]:
    """The referrer descriptors in the fallback tag (empty if there is none) and the tag's ETag."""
    tag = fallback_tag(digest)
    head = client.head_manifest(repo, tag)
    if head is None:
        return [], None
    desc, data = client.get_manifest(repo, head.digest)
    if desc.media_type not in INDEX_MEDIA_TYPES:
        raise InputError(f"{client.registry}/{repo}:{tag} is a {desc.media_type}, not a referrers index")
    return list(parse_index(data, where=f"{repo}:{tag}").manifests), f'"{desc.digest}"'


def attach_artifact(
    client: RegistryClient, repo: str, manifest: bytes, descriptor: Descriptor, subject: Descriptor
) -> Descriptor:
    what = f"artifact {descriptor.digest}"
    if sha256_digest(manifest) != descriptor.digest or len(manifest) != descriptor.size:
        raise InputError(f"{what}: the manifest bytes do not match the descriptor")
    parsed = parse_manifest(manifest, where=what)
    if parsed.subject is None or parsed.subject.digest != subject.digest:
        raise InputError(f"{what}: its subject is not {subject.digest}")
    pushed, headers = client.push_manifest(repo, descriptor.digest, manifest, descriptor.media_type)
    if headers.get("oci-subject") == subject.digest:
        return pushed  # the registry maintains the referrers list itself
    entry = Descriptor(
        pushed.media_type,
        pushed.digest,
        pushed.size,
        annotations=dict(parsed.annotations),
        # spec.md "Listing Referrers": artifactType is the manifest's, else its config's media type.
        artifact_type=parsed.artifact_type or parsed.config.media_type,
    )
    add_to_fallback(client, repo, subject.digest, [entry])
    return pushed


def add_to_fallback(
    client: RegistryClient,
    repo: str,
    subject: str,
    entries: list[Descriptor],
    *,
    attempts: int = _FALLBACK_ATTEMPTS,
) -> None:
    """Merge ``entries`` into the fallback index of ``subject`` (see the module docstring)."""
    from bastion.oci._registry import ConcurrentUpdate

    tag = fallback_tag(subject)
    ours: dict[str, Descriptor] = {e.digest: e for e in entries}
    for _attempt in range(attempts + 1):
        started = time.monotonic()
        current, etag = read_fallback(client, repo, subject)
        present = {d.digest for d in current}
        if all(d in present for d in ours):
            return
        if _attempt == attempts:
            break
        merged = current + [d for digest, d in ours.items() if digest not in present]
        data = canonical_json(image_index(merged))
        try:
            client.push_manifest(repo, tag, data, MEDIA_TYPE_INDEX, if_match=etag)
        except ConcurrentUpdate:
            continue
        # Everything in the index we wrote is ours to keep: a writer that overwrote it may have dropped
        # entries it never saw.
        ours.update((d.digest, d) for d in merged)
        elapsed = time.monotonic() - started
        time.sleep(2 * elapsed + random.uniform(0.02, 0.1))  # noqa: S311 (jitter, not a secret)
    raise NetworkError(
        f"could not update the referrers tag {client.registry}/{repo}:{tag} after {attempts} attempts",
        hint="another client keeps rewriting it",
    )
