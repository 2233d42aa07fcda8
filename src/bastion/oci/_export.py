"""Exporting images from the store: a standalone OCI layout, or a ``docker load`` archive.

An OCI layout export carries what is attached to the image (signatures, attestations), as
``cosign save`` does, so that ``bastion verify oci-dir://...`` passes on the copy exactly when it
passes on the original: every referrer of the exported index and manifests (and referrers of those,
a signature on an attestation), recorded as in the store (an untagged ``index.json`` entry with its
``artifactType`` and subject; image-layout.md has no referrers API, and OCI 1.1 manifest.md
``subject`` lets any reader find them), and the tags kept next to an image for what is attached to it
(:func:`_attachment_tag_names`). A docker-archive has no place for them (``docker load`` reads
``manifest.json`` only).

A multi-platform export is tagged twice over: the index under its name, as skopeo and ``bastion``
read it, and each platform's manifest under ``NAME-<arch>`` (:func:`platform_tag`), because readers
of one image cannot take an index: umoci 0.4 refuses a tag that leads to several manifests ("tag is
ambiguous"). Those entries carry :data:`ANNOTATION_PLATFORM_OF`, so a reader asked for "the layout's
image" without a tag still finds one image (:func:`layout_images`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import InputError
from bastion.identifiers import ANNOTATION_PLATFORM_OF, ANNOTATION_SUBJECT
from bastion.oci._image import select_manifest
from bastion.oci._layer import LayerEntry, write_tar
from bastion.oci._model import (
    ANNOTATION_REF_NAME,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_INDEX,
    Descriptor,
    canonical_json,
)
from bastion.oci._output import OutputFile
from bastion.oci._platform import Platform
from bastion.oci._store import LAYOUT_VERSION, Store, check_ref

# Docker 25+ `docker save` names images in index.json with this annotation (containerd's convention).
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
_ARCHIVE_MTIME = 0  # the archive is a container for blobs; its own timestamps carry nothing
# A referrer of a referrer (a signature on an attestation) is followed; deeper chains are not made by
# any tool we know of, and the bound keeps a cycle of hand-made subjects from running forever.
_MAX_REFERRER_DEPTH = 4
# distribution-spec spec.md "Referrers Tag Schema": <alg>-<ref> (an index of referrers, for registries
# without the API); cosign SIGNATURE_SPEC.md "Tag-based Discovery": the same with .sig, .att, .sbom.
_ATTACHMENT_TAG = re.compile(r"sha256-[0-9a-f]{64}(?:\.sig|\.att|\.sbom)?")


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the image's descriptor, and the attached artifacts and tags it carried."""

    descriptor: Descriptor
    attachments: tuple[Descriptor, ...] = ()  # referrers (untagged index.json entries) and attachment tags
    platform_tags: tuple[str, ...] = ()  # NAME-<arch> for each platform of an exported index


def is_attachment(entry: Descriptor) -> bool:
    """Whether an ``index.json`` entry is something attached to an image rather than an image: a
    referrer recorded by the store (its subject annotation) or another tool (an ``artifactType``), or a
    tag named as :data:`_ATTACHMENT_TAG` describes (``sha256-<hex>.att``)."""
    if ANNOTATION_SUBJECT in entry.annotations or entry.artifact_type:
        return True
    name = entry.ref_name
    return name is not None and _ATTACHMENT_TAG.fullmatch(name.rpartition(":")[2]) is not None


def layout_images(entries: Sequence[Descriptor]) -> list[Descriptor]:
    """The images of a layout's ``index.json`` entries: not what is attached to an image
    (:func:`is_attachment`; all entries if every one is), and not a platform tag
    (:data:`ANNOTATION_PLATFORM_OF`) of an index the layout also holds."""
    images = [e for e in entries if not is_attachment(e)] or list(entries)
    digests = {e.digest for e in images}
    return [e for e in images if e.annotations.get(ANNOTATION_PLATFORM_OF) not in digests]


def platform_tag(name: str, platform: Platform) -> str:
    """``bastion/python:3.11`` and ``linux/amd64`` → ``bastion/python:3.11-amd64`` (``-arm-v7`` with an
    ARM variant; the OS first when it is not Linux), the per-architecture tag convention of
    multi-platform publishing."""
    parts = [] if platform.os == "linux" else [platform.os]
    parts.append(platform.architecture)
    if platform.variant:
        parts.append(platform.variant)
    return check_ref(f"{name}-{'-'.join(parts)}")


def _attachment_tag_names(digest: str) -> tuple[str, ...]:
    """The tag names under which what is attached to ``digest`` may be kept (``sha256-<hex>`` and
    cosign's ``.sig``, ``.att``, ``.sbom``)."""
    base = digest.replace(":", "-", 1)
    return (base, f"{base}.sig", f"{base}.att", f"{base}.sbom")


def attachments(store: Store, image: Descriptor) -> list[tuple[str, Descriptor]]:
    """(subject digest, ``index.json`` entry) of everything attached in ``store`` to ``image`` or to
    the manifests it lists: referrers (and theirs), then attachment tags, each once, in store order."""
    documents = (*INDEX_MEDIA_TYPES, *MANIFEST_MEDIA_TYPES)
    subjects = [d.digest for d in store.walk(image) if d.media_type in documents]
    tags = store.list_tags()
    found: list[tuple[str, Descriptor]] = []
    seen: set[str] = set()
    pending = [(digest, 0) for digest in subjects]
    while pending:
        subject, depth = pending.pop(0)
        for entry in store.referrers(subject):
            if entry.digest not in seen:
                seen.add(entry.digest)
                found.append((subject, entry))
                if depth + 1 < _MAX_REFERRER_DEPTH:
                    pending.append((entry.digest, depth + 1))
    wanted = {name for digest in subjects for name in _attachment_tag_names(digest)}
    for name, entry in tags.items():
        if name.rpartition(":")[2] in wanted:
            found.append(("", entry))
    return found


def _copy(store: Store, out: Store, desc: Descriptor) -> None:
    blobs = list(store.walk(desc))
    for blob in reversed(blobs):  # referenced blobs before the documents that reference them
        if not out.has_blob(blob.digest):
            with store.open_blob(blob.digest) as f:
                out.put_blob_stream(f, blob.digest, blob.size, blob.media_type)


def export_oci_dir(
    store: Store,
    ref: str,
    dest: Path,
    tag: str | None = None,
    *,
    platform: str | None = None,
    with_attachments: bool = True,
) -> Exported:
    """Copy the image ``ref`` (with every blob it references) into the OCI layout ``dest``.

    ``dest`` is created, or must already be an OCI layout (other images there are kept). The image is
    tagged ``tag``, by default its name in the store (``bastion/python:3.11``; ``latest`` when ``ref``
    is a digest), so that ``skopeo inspect oci:DEST:TAG`` finds it. An index's platform manifests are
    also tagged ``TAG-<arch>`` (module docstring), so ``umoci unpack --image DEST:TAG-amd64`` works.
    With ``platform``, only that platform's manifest is exported, under ``tag``.
    With ``with_attachments`` (the default) what is attached to the exported index and manifests is
    copied too (module docstring). Blobs are verified against their digests as they are copied.
    """
    resolved = store.resolve(ref)
    desc = resolved if platform is None else select_manifest(store, resolved, Platform.parse(platform))
    name = check_ref(tag or resolved.ref_name or "latest")
    if dest.exists() and any(dest.iterdir()) and not (dest / "oci-layout").exists():
        raise InputError(f"{dest} exists and is not an OCI image layout", hint="choose a new directory")
    out = Store(dest)
    _copy(store, out, desc)
    carried: list[Descriptor] = []
    for subject, entry in attachments(store, desc) if with_attachments else []:
        _copy(store, out, entry)
        if subject:
            carried.append(out.attach(entry, subject))
        else:
            carried.append(out.tag(check_ref(entry.ref_name or ""), entry))
    plain = {k: v for k, v in desc.annotations.items() if k != ANNOTATION_REF_NAME}
    top = out.tag(name, desc.with_annotations(plain))
    return Exported(top, tuple(carried), _tag_platforms(out, desc, name))


def _tag_platforms(out: Store, desc: Descriptor, name: str) -> tuple[str, ...]:
    """Tag each platform manifest of the index ``desc`` as ``NAME-<arch>`` (module docstring); two
    entries that would share a tag get none, since a tag must name one image, nor does a platform whose
    name cannot be part of a tag (image-layout.md ref.name grammar; a pulled image may say anything)."""
    if desc.media_type not in INDEX_MEDIA_TYPES:
        return ()
    by_tag: dict[str, list[Descriptor]] = {}
    for entry in out.read_index(desc).manifests:
        if entry.media_type in MANIFEST_MEDIA_TYPES and entry.platform is not None:
            if entry.platform.is_unknown:
                continue
            try:
                by_tag.setdefault(platform_tag(name, entry.platform), []).append(entry)
            except InputError:
                continue
    tags = []
    for tag, entries in sorted(by_tag.items()):
        if len({e.digest for e in entries}) == 1:
            plain = {k: v for k, v in entries[0].annotations.items() if k != ANNOTATION_REF_NAME}
            out.tag(tag, entries[0].with_annotations({**plain, ANNOTATION_PLATFORM_OF: desc.digest}))
            tags.append(tag)
    return tuple(tags)


def export_docker_archive(
    store: Store, ref: str, dest_tar: Path, platform: str, *, repo_tag: str | None = None
) -> Descriptor:
    """Write one platform of ``ref`` as a tar that ``docker load`` and ``skopeo docker-archive:`` read.

    The archive is Docker 25's ``docker save`` layout: an OCI layout (``oci-layout``, ``index.json``,
    ``blobs/sha256/``) plus the ``manifest.json`` older loaders read (``Config``, ``RepoTags``,
    ``Layers`` as paths into ``blobs/``). Layers stay compressed; loaders decompress them. Entries are
    in lexical order with fixed owners, modes and mtimes, so the same image gives the same archive.
    ``repo_tag`` defaults to the image's name in the store; a regular file is written atomically
    (:class:`OutputFile`).
    Returns the descriptor of the exported manifest.
    """
    resolved = store.resolve(ref)
    desc = select_manifest(store, resolved, Platform.parse(platform))
    manifest = store.read_manifest(desc)
    name = repo_tag or resolved.ref_name
    repo_tags: list[str] = []
    annotations: dict[str, str] = {}
    if name is not None and ":" in name.rsplit("/", 1)[-1]:
        check_ref(name)
        repo_tags.append(name)
        annotations = {
            ANNOTATION_CONTAINERD_NAME: _qualified(name),
            ANNOTATION_REF_NAME: name.rsplit(":", 1)[1],
        }
    elif repo_tag is not None:
        raise InputError(f"not a repository:tag name: {repo_tag!r}", hint="e.g. bastion/python:3.11")

    blobs = [desc, manifest.config, *manifest.layers]
    for blob in blobs:
        store.verify_blob(blob)
    index_desc = Descriptor(desc.media_type, desc.digest, desc.size, annotations, desc.platform)
    documents = {
        "index.json": canonical_json(
            {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": [index_desc.to_json()]}
        ),
        "manifest.json": canonical_json(
            [
                {
                    "Config": _blob_name(manifest.config),
                    "RepoTags": repo_tags,
                    "Layers": [_blob_name(layer) for layer in manifest.layers],
                }
            ]
        ),
        "oci-layout": canonical_json({"imageLayoutVersion": LAYOUT_VERSION}),
    }
    entries = [_dir("blobs"), _dir("blobs/sha256")]
    entries += [_file(path, data=data) for path, data in documents.items()]
    seen: set[str] = set()
    for blob in blobs:
        if blob.digest not in seen:
            seen.add(blob.digest)
            entries.append(_file(_blob_name(blob), source=store.blob_path(blob.digest)))

    # A regular file is replaced whole; /dev/null, a FIFO or /dev/stdout is written straight through.
    with OutputFile(dest_tar, parents=True) as out:
        write_tar(entries, out, source_date_epoch=_ARCHIVE_MTIME)
    return desc


def _blob_name(desc: Descriptor) -> str:
    return "blobs/sha256/" + desc.digest.removeprefix("sha256:")


def _dir(path: str) -> LayerEntry:
    return LayerEntry(path, "dir", 0o755, 0, 0, _ARCHIVE_MTIME)


def _file(path: str, *, data: bytes | None = None, source: Path | None = None) -> LayerEntry:
    return LayerEntry(path, "file", 0o644, 0, 0, _ARCHIVE_MTIME, data=data, source=source)


def _qualified(name: str) -> str:
    """``bastion/python:3.11`` → ``docker.io/bastion/python:3.11``, as Docker's reference parser does."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if rest else f"docker.io/library/{name}"
