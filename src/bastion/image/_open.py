"""Opening any image for scanning: :func:`open_target`.

References are parsed by :func:`bastion.oci.parse_image_ref` (the forms, and where a path ends and a
tag begins, are in :mod:`bastion.oci`); ``sbom://`` is not an image and is refused here. Resolved:

* a store name — the image in the local store (``Settings.store_dir``, :func:`bastion.oci.store_image`;
  an ambiguous short name is refused, never read from a registry instead);
* ``oci-dir://`` — an OCI image layout, the entry :func:`bastion.oci.layout_entry` picks;
* ``docker-archive://`` — a ``docker save`` archive: the OCI layout inside it when there is one
  (Docker 25+), else ``manifest.json`` (``Config``, ``RepoTags``, ``Layers``);
* ``fs://DIR`` — a root filesystem directory, scanned in place (no layers, owners from ``lstat``);
* a registry reference not in the local store — the chosen platform's image is pulled (every document
  and blob checked against its digest) into a temporary layout under ``Settings.home / "work"``,
  removed on close.

Blob verification: index, manifest and config are checked against their digests before they are
parsed; each layer against its descriptor digest and size and against the config's ``diff_ids``
(for ``docker save`` archives without an OCI layout: the config against its file name, which is its
digest, and layers against ``diff_ids``). Layers are decompressed into spool files in a fresh
directory under ``Settings.home / "work"`` that :meth:`ImageTarget.close` removes, and indexed
there (see :mod:`bastion.image._extract`); no file of the image is written to disk. An image whose
layers expand to more than ``Settings.max_image_size`` is refused while it is being read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bastion.config import Settings
from bastion.documents import load_json
from bastion.errors import InputError, IntegrityError
from bastion.image._extract import Budget, LayerContents, LayerResult, Tree, spool_layer
from bastion.image._model import FileInfo, FileKind, ImageTarget, LayerInfo
from bastion.image._sources import (
    Chosen,
    DirFiles,
    Files,
    TarFiles,
    blob_name,
    choose,
    config_platform,
    layout_index,
    read_verified,
)
from bastion.oci import (
    ANNOTATION_REF_NAME,
    MANIFEST_MEDIA_TYPES,
    Descriptor,
    ImageRef,
    Platform,
    Scheme,
    Store,
    entry_names,
    layout_entry,
    parse_image_ref,
    parse_manifest,
    parse_reference,
    store_image,
    walk_index,
)

__all__ = ["open_target"]

_IMAGES = frozenset(s for s in Scheme if s is not Scheme.sbom)
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
Opener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
_MAX_DOCKER_MANIFEST = 16 * 1024 * 1024
_BLOB_NAME = re.compile(r"(?:blobs/sha256/|)([a-f0-9]{64})(?:\.json)?")


def open_target(
    reference: str | ImageRef,
    settings: Settings,
    *,
    platform: str | None = None,
) -> ImageTarget:
    """Open ``reference`` (parsed by :func:`bastion.oci.parse_image_ref`) for scanning; use the result
    as a context manager (it owns the layers' spool files, or a pulled copy of the image, removed on
    close)."""
    ref = parse_image_ref(reference).require(_IMAGES, "opening an image")
    wanted = _Want(Platform.parse(platform) if platform else None)
    found = store_image(ref, settings.store_dir)
    if found is not None:
        return _open_store(ref.text, *found, settings, wanted)
    if ref.scheme is Scheme.registry:
        return _open_registry(ref.text, settings, wanted)
    assert ref.path is not None  # every other scheme names a path (parse_image_ref)
    if ref.scheme is Scheme.fs:
        return _open_fs(ref.text, ref.path)
    if ref.scheme is Scheme.oci_dir:
        files = DirFiles(ref.path)
        desc = layout_entry(layout_index(files), ref, files.where)
        return _open_layout(ref.text, files, desc, settings, wanted)
    archive = TarFiles(ref.path)
    try:
        if archive.exists("oci-layout") and archive.exists("index.json"):
            desc = layout_entry(layout_index(archive), ref, archive.where)
            return _open_layout(ref.text, archive, desc, settings, wanted)
        return _open_docker_manifest(ref.text, archive, ref.tag, settings, wanted)
    finally:
        archive.close()


# -- sources ------------------------------------------------------------------------------------------


def _open_store(
    reference: str, store: Store, desc: Descriptor, settings: Settings, wanted: _Want
) -> ImageTarget:
    if desc.ref_name is None and "@" in reference:
        desc = desc.with_annotations({ANNOTATION_REF_NAME: reference.split("@", 1)[0]})
    return _open_layout(reference, DirFiles(store.root), desc, settings, wanted)


def _open_registry(reference: str, settings: Settings, wanted: _Want) -> ImageTarget:
    """Pull what scanning one platform needs (index, manifests and configs, then the chosen image's
    layers) into a temporary layout, and open that; the layout is removed on close."""
    from bastion.oci import RegistryClient

    ref = parse_reference(reference)
    work = settings.home / "work"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pull-", dir=work))
    try:
        store = Store(tmp / "layout")
        repo = ref.repository
        with RegistryClient(ref.registry) as client:

            def fetch(blob: Descriptor) -> None:
                if not store.has_blob(blob.digest):
                    with store.blob_writer(blob.media_type) as writer:
                        client.get_blob(repo, blob.digest, writer, size=blob.size)
                        writer.commit(blob.digest, blob.size)

            def document(desc: Descriptor) -> bytes:
                got, data = client.get_manifest(repo, desc.digest)
                if got.size != desc.size:
                    raise IntegrityError(
                        f"manifest {desc.digest} is {got.size} bytes, its descriptor says {desc.size}"
                    )
                store.put_blob(data, got.media_type)
                return data

            top, _ = client.get_manifest(repo, ref.ref)
            # index → manifests → configs (never layers yet), each document once, bounded in depth and count
            for visit in walk_index(top, document, where=reference):
                if visit.data is None and visit.descriptor.media_type in MANIFEST_MEDIA_TYPES:
                    manifest = visit.descriptor
                    fetch(parse_manifest(document(manifest), where=manifest.digest).config)
            files = DirFiles(store.root)
            for layer in choose(files, top, wanted.platform).layers:
                fetch(layer)
        name = f"{ref.registry}/{ref.repository}" + (f":{ref.tag}" if ref.tag else "")
        target = _open_layout(
            reference, files, top.with_annotations({ANNOTATION_REF_NAME: name}), settings, wanted
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    target._cleanup.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    return target


def _repository(names: list[str]) -> tuple[str | None, str | None]:
    """``bastion/python:3.11`` → (``bastion/python``, ``3.11``); a bare tag gives no repository."""
    repository = tag = None
    for full in names:
        name = full.split("@", 1)[0]
        head, sep, tail = name.rpartition(":")
        if sep and "/" not in tail:
            repository, tag = repository or head, tag or tail
        elif "/" in name or not sep:
            repository = repository or (name if "/" in name else None)
            tag = tag or (name if "/" not in name else None)
    return repository, tag


def _open_layout(
    reference: str, files: Files, desc: Descriptor, settings: Settings, wanted: _Want
) -> ImageTarget:
    chosen = choose(files, desc, wanted.platform)
    diff_ids = _diff_ids(chosen.config, len(chosen.layers), desc.digest)
    layers = [
        (layer, diff_id, functools.partial(files.open, blob_name(layer.digest)))
        for layer, diff_id in zip(chosen.layers, diff_ids, strict=True)
    ]
    repository, tag = _repository(entry_names(desc))
    return _extract(
        reference,
        settings,
        chosen,
        layers,
        repository,
        tag,
        files.where,
        parallel=isinstance(files, DirFiles),
    )


def _open_docker_manifest(
    reference: str, archive: TarFiles, tag: str | None, settings: Settings, wanted: _Want
) -> ImageTarget:
    """``docker save`` without an OCI layout: ``manifest.json`` lists config and layer files by name."""
    where = f"{archive.where}:manifest.json"
    with archive.open("manifest.json") as f:
        entries = load_json(f.read(_MAX_DOCKER_MANIFEST + 1), where=where, max_bytes=_MAX_DOCKER_MANIFEST)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
        raise IntegrityError("manifest.json is not a list of images", where=where)
    if tag is not None:
        entries = [e for e in entries if any(t == tag or t.endswith(":" + tag) for t in _repo_tags(e, where))]
    if len(entries) != 1:
        tags = sorted(t for e in entries for t in _repo_tags(e, where))
        raise InputError(
            "the archive holds several images or none that match", where=where, hint=", ".join(tags)
        )
    entry: dict[str, Any] = entries[0]
    config_name, layer_names = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise IntegrityError("image entry has no Config or Layers", where=where)
    named = _BLOB_NAME.fullmatch(config_name)
    if named is None:
        raise IntegrityError(
            f"config {config_name!r} is not named by its digest: cannot verify it", where=where
        )
    config_digest = "sha256:" + named.group(1)
    config = load_json(read_verified(archive, config_name, config_digest, "config"), where=config_digest)
    if not isinstance(config, dict):
        raise IntegrityError("the image config is not a JSON object", where=config_digest)
    found = config_platform(config, config_digest)
    asked = wanted.platform
    if asked is not None and (found.os, found.architecture) != (asked.os, asked.architecture):
        raise InputError(f"the image is for {found}, not {asked}", where=where)
    diff_ids = _diff_ids(config, len(layer_names), config_digest)
    layers = []
    for name, diff_id in zip(layer_names, diff_ids, strict=True):
        if not isinstance(name, str):
            raise IntegrityError("a layer name is not a string", where=where)
        blob = _BLOB_NAME.fullmatch(name)
        desc = None if blob is None else Descriptor(_DOCKER_LAYER, "sha256:" + blob.group(1), 0)
        layers.append((desc, diff_id, functools.partial(archive.open, name)))
    chosen = Chosen(None, None, (), config, found)
    repository, image_tag = _repository(_repo_tags(entry, where))
    return _extract(reference, settings, chosen, layers, repository, image_tag, archive.where, parallel=False)


def _repo_tags(entry: dict[str, Any], where: str) -> list[str]:
    """An entry's ``RepoTags`` (docker's image/spec v1.2 save format: an array of strings, or null)."""
    tags = entry.get("RepoTags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise IntegrityError("RepoTags is not a list of strings", where=where)
    return tags


def _diff_ids(config: dict[str, Any], count: int, where: str) -> list[str | None]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if diff_ids is None:
        return [None] * count
    if (
        not isinstance(diff_ids, list)
        or len(diff_ids) != count
        or not all(isinstance(d, str) for d in diff_ids)
    ):
        listed = f"{len(diff_ids)} diff_ids" if isinstance(diff_ids, list) else "diff_ids that are not a list"
        raise IntegrityError(f"config lists {listed} for {count} layers", where=where)
    return list(diff_ids)


# -- extraction -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Want:
    """What the caller of :func:`open_target` asked for."""

    platform: Platform | None


def _extract(
    reference: str,
    settings: Settings,
    chosen: Chosen,
    layers: Sequence[tuple[Descriptor | None, str | None, Opener]],
    repository: str | None,
    tag: str | None,
    where: str,
    parallel: bool,
) -> ImageTarget:
    work = settings.home / "work"
    work.mkdir(parents=True, exist_ok=True)
    spool_dir = Path(tempfile.mkdtemp(prefix="scan-", dir=work))
    spools = [spool_dir / f"layer-{index}.tar" for index in range(len(layers))]
    labels = [
        f"{where}: layer {index} ({desc.digest if desc else 'unnamed'})"
        for index, (desc, _, _) in enumerate(layers)
    ]

    budget = Budget(settings.max_image_size)

    def spool(index: int) -> LayerResult:
        desc, diff_id, opener = layers[index]
        with opener() as blob:
            result = spool_layer(blob, spools[index], labels[index], budget)
        _check_layer(result, desc, diff_id, labels[index])
        return result

    try:
        # Decompressing and hashing release the GIL: layers from a directory spool side by side.
        # Every layer is checked against its digests before any is parsed.
        if parallel and len(layers) > 1:
            with ThreadPoolExecutor(max_workers=min(len(layers), os.cpu_count() or 1)) as pool:
                results = list(pool.map(spool, range(len(layers))))
        else:
            results = [spool(index) for index in range(len(layers))]
        tree = Tree(spool_dir / "sparse.bin", extra_index=len(layers), budget=budget)
        infos = []
        for index, result in enumerate(results):
            tree.apply_layer(spools[index], index, labels[index])
            desc = layers[index][0]
            media_type = (
                desc.media_type
                if desc
                else _DOCKER_LAYER + ("" if result.compression == "none" else "." + result.compression)
            )
            infos.append(LayerInfo(result.digest, result.diff_id, media_type, result.size))
    except BaseException:
        shutil.rmtree(spool_dir, ignore_errors=True)
        raise
    return ImageTarget(
        name=reference,
        root=None,
        files=tree.files,
        layers=tuple(infos),
        manifest_digest=chosen.manifest.digest if chosen.manifest else None,
        index_digest=chosen.index.digest if chosen.index else None,
        platform=str(chosen.platform),
        config=chosen.config,
        repository=repository,
        tag=tag,
        contents=LayerContents([*spools, spool_dir / "sparse.bin"], tree.extents),
        _cleanup=[lambda: shutil.rmtree(spool_dir, ignore_errors=True)],
    )


def _check_layer(result: LayerResult, desc: Descriptor | None, diff_id: str | None, where: str) -> None:
    # descriptor.md "Verification" and config.md "rootfs.diff_ids": both digests must match.
    if desc is not None and result.digest != desc.digest:
        raise IntegrityError(f"layer blob is {result.digest}, expected {desc.digest}", where=where)
    if desc is not None and desc.size and result.size != desc.size:
        raise IntegrityError(f"layer blob is {result.size} bytes, expected {desc.size}", where=where)
    if diff_id is not None and result.diff_id != diff_id:
        raise IntegrityError(
            f"layer content is {result.diff_id}, the config's diff_id is {diff_id}", where=where
        )


def _open_fs(reference: str, root: Path) -> ImageTarget:
    """A directory scanned in place: nothing is copied, nothing is removed on close."""
    if not root.is_dir():
        raise InputError(f"{reference}: {root} is not a directory")
    files: dict[str, FileInfo] = {}
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            if not prefix:
                raise InputError(f"{reference}: {root} is gone") from None
            continue  # gone since its parent was listed
        except OSError as exc:
            raise InputError(f"cannot read {directory}: {exc.strerror}") from None
        for entry in entries:
            path = f"{prefix}/{entry.name}"
            try:
                st = entry.stat(follow_symlinks=False)
                kind = _fs_kind(st.st_mode)
                link = str(Path(entry.path).readlink()) if kind is FileKind.SYMLINK else None
            except FileNotFoundError:
                continue  # gone since the directory was listed: a live tree changes under a scan
            except OSError as exc:
                raise InputError(f"cannot read {entry.path}: {exc.strerror}") from None
            size = st.st_size if kind is FileKind.FILE else 0
            files[path] = FileInfo(path, kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, link)
            if kind is FileKind.DIRECTORY:
                stack.append((path, Path(entry.path)))
    return ImageTarget(name=reference, root=root, files=files)


def _fs_kind(mode: int) -> FileKind:  # noqa: PLR0911  (one return per file type stat reports)
    if stat.S_ISDIR(mode):
        return FileKind.DIRECTORY
    if stat.S_ISLNK(mode):
        return FileKind.SYMLINK
    if stat.S_ISCHR(mode):
        return FileKind.CHAR_DEVICE
    if stat.S_ISBLK(mode):
        return FileKind.BLOCK_DEVICE
    if stat.S_ISFIFO(mode):
        return FileKind.FIFO
    if stat.S_ISSOCK(mode):
        return FileKind.SOCKET
    return FileKind.FILE
