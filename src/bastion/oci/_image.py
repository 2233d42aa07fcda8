"""Putting whole images into a store and picking one platform out of an index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bastion.errors import InputError
from bastion.oci._layer import Layer
from bastion.oci._model import (
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    HistoryEntry,
    RuntimeConfig,
    image_config,
    image_index,
    image_manifest,
    load_json_object,
)
from bastion.oci._platform import Platform
from bastion.oci._store import Store


def put_image(
    store: Store,
    *,
    platform: Platform,
    layers: Sequence[Layer],
    runtime: RuntimeConfig,
    source_date_epoch: int,
    history: Sequence[HistoryEntry] = (),
    annotations: Mapping[str, str] | None = None,
) -> Descriptor:
    """Store the config and manifest of a single-platform image; its layers must already be stored.

    The returned descriptor carries ``platform``, ready for :func:`put_index`.
    """
    config = image_config(
        platform,
        runtime,
        [layer.diff_id for layer in layers],
        source_date_epoch=source_date_epoch,
        history=history,
    )
    config_desc = store.put_json(config, MEDIA_TYPE_CONFIG)
    manifest = image_manifest(config_desc, [layer.descriptor for layer in layers], annotations=annotations)
    desc = store.put_json(manifest, MEDIA_TYPE_MANIFEST)
    return Descriptor(desc.media_type, desc.digest, desc.size, platform=platform)


def put_index(
    store: Store, manifests: Sequence[Descriptor], *, annotations: Mapping[str, str] | None = None
) -> Descriptor:
    """Store an image index over platform manifests, in the order given."""
    return store.put_json(image_index(manifests, annotations=annotations), MEDIA_TYPE_INDEX)


def select_manifest(store: Store, desc: Descriptor, platform: Platform) -> Descriptor:
    """The manifest for ``platform``: ``desc`` itself if it is a matching manifest, else from its index.

    A wanted platform without a variant matches any variant (``linux/arm`` finds ``linux/arm/v7``).
    """
    if desc.media_type in MANIFEST_MEDIA_TYPES:
        found = desc.platform or _manifest_platform(store, desc)
        if not found.matches(platform):
            raise InputError(f"image {desc.digest} is for {found}, not {platform}")
        return desc
    if desc.media_type not in INDEX_MEDIA_TYPES:
        raise InputError(f"{desc.digest} is a {desc.media_type}, not an image")
    available: list[str] = []
    for child in store.read_index(desc).manifests:
        if child.media_type in INDEX_MEDIA_TYPES:
            try:
                return select_manifest(store, child, platform)
            except InputError:
                continue
        if child.platform is not None:
            if child.platform.matches(platform):
                return child
            available.append(str(child.platform))
    raise InputError(
        f"image {desc.digest} has no manifest for {platform}",
        hint="platforms: " + (", ".join(available) or "none recorded"),
    )


def _manifest_platform(store: Store, desc: Descriptor) -> Platform:
    config = store.read_manifest(desc).config
    return Platform.from_json(load_json_object(store.read_blob(config.digest), "config"), where=config.digest)
