"""Exporting images from the store: a standalone OCI layout, or a ``docker load`` archive."""

from __future__ import annotations

from pathlib import Path

from bastion.errors import InputError
from bastion.oci._image import select_manifest
from bastion.oci._layer import LayerEntry, write_tar
from bastion.oci._model import (
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_INDEX,
    Descriptor,
    Platform,
    canonical_json,
)
from bastion.oci._output import OutputFile
from bastion.oci._store import LAYOUT_VERSION, Store, check_ref

# Docker 25+ `docker save` names images in index.json with this annotation (containerd's convention).
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
_ARCHIVE_MTIME = 0  # the archive is a container for blobs; its own timestamps carry nothing


def export_oci_dir(
    store: Store, ref: str, dest: Path, tag: str | None = None, *, platform: str | None = None
) -> Descriptor:
    """Copy the image ``ref`` (with every blob it references) into the OCI layout ``dest``.

    ``dest`` is created, or must already be an OCI layout (other images there are kept). The image is
    tagged ``tag``, by default its name in the store (``bastion/python:3.11``; ``latest`` when ``ref``
    is a digest), so that ``skopeo inspect oci:DEST:TAG`` finds it. With ``platform``, only that
    platform's manifest is exported — what ``umoci unpack`` needs, since it refuses a tag that leads
    to several manifests ("tag is ambiguous").
    Blobs are verified against their digests as they are copied.
    """
    resolved = store.resolve(ref)
    desc = resolved if platform is None else select_manifest(store, resolved, Platform.parse(platform))
    name = check_ref(tag or resolved.ref_name or "latest")
    if dest.exists() and any(dest.iterdir()) and not (dest / "oci-layout").exists():
        raise InputError(f"{dest} exists and is not an OCI image layout", hint="choose a new directory")
    out = Store(dest)
    blobs = list(store.walk(desc))
    for blob in reversed(blobs):  # referenced blobs before the documents that reference them
        if not out.has_blob(blob.digest):
            with store.open_blob(blob.digest) as f:
                out.put_blob_stream(f, blob.digest, blob.size, blob.media_type)
    plain = {k: v for k, v in desc.annotations.items() if k != ANNOTATION_REF_NAME}
    return out.tag(name, desc.with_annotations(plain))


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
