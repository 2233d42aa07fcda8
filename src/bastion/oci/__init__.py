"""OCI images: a reproducible layer writer, image documents, the local store, and exports.

The local store is one OCI image layout directory whose ``index.json`` tags images with full reference
names (``bastion/python:3.11``) in the ``org.opencontainers.image.ref.name`` annotation. Everything
written is deterministic: sorted tar entries with numeric owners and clamped mtimes, gzip without
timestamp or name, and JSON documents in one canonical serialisation (:func:`canonical_json`).
"""

from typing import TYPE_CHECKING

from bastion._clock import rfc3339
from bastion._lazy import lazy_attributes
from bastion.identifiers import ANNOTATION_PLATFORM_OF, ANNOTATION_SUBJECT
from bastion.oci._export import (
    Exported,
    attachments,
    export_docker_archive,
    export_oci_dir,
    is_attachment,
    layout_images,
    platform_tag,
)
from bastion.oci._files import BlobWriter, remove_abandoned, write_cache_file
from bastion.oci._image import put_image, put_index, select_manifest
from bastion.oci._imageref import (
    SCHEMES,
    ImageRef,
    Scheme,
    SchemeInfo,
    entry_names,
    layout_entry,
    layout_image,
    parse_image_ref,
    store_image,
)
from bastion.oci._layer import (
    Compression,
    Layer,
    LayerEntry,
    Slice,
    SliceReader,
    add_layer,
    write_layer,
    write_tar,
)
from bastion.oci._limits import MAX_NESTING, DocumentBudget, RegistryLimits, Visit, walk_index
from bastion.oci._model import (
    ANNOTATION_CREATED,
    ANNOTATION_REF_NAME,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_ZSTD,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    HistoryEntry,
    Index,
    Manifest,
    RuntimeConfig,
    canonical_json,
    check_digest,
    image_config,
    image_index,
    image_manifest,
    load_json_object,
    parse_index,
    parse_manifest,
)
from bastion.oci._output import OutputFile, write_output
from bastion.oci._parts import PartCache, add_layer_parts, write_layer_parts
from bastion.oci._platform import Platform, host_platform
from bastion.oci._reference import Reference, is_registry_reference, parse_reference
from bastion.oci._store import Store, check_ref, find_in_store, open_in_store

# The registry client is loaded on first use (PEP 562, bastion._lazy): it imports httpx, which a local
# build or scan never needs (docs/benchmarks.md, import costs).
if TYPE_CHECKING:
    from bastion.oci._auth import AuthenticationError, Credentials
    from bastion.oci._referrers import fallback_tag
    from bastion.oci._registry import RegistryClient
    from bastion.oci._transfer import TransferStats, copy_image, pull_image, push_image

__getattr__ = lazy_attributes(__name__)


__all__ = [
    "ANNOTATION_CREATED",
    "ANNOTATION_PLATFORM_OF",
    "ANNOTATION_REF_NAME",
    "ANNOTATION_SUBJECT",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_MEDIA_TYPES",
    "MAX_NESTING",
    "MEDIA_TYPE_CONFIG",
    "MEDIA_TYPE_EMPTY",
    "MEDIA_TYPE_INDEX",
    "MEDIA_TYPE_LAYER",
    "MEDIA_TYPE_LAYER_GZIP",
    "MEDIA_TYPE_LAYER_ZSTD",
    "MEDIA_TYPE_MANIFEST",
    "SCHEMES",
    "AuthenticationError",
    "BlobWriter",
    "Compression",
    "Credentials",
    "Descriptor",
    "DocumentBudget",
    "Exported",
    "HistoryEntry",
    "ImageRef",
    "Index",
    "Layer",
    "LayerEntry",
    "Manifest",
    "OutputFile",
    "PartCache",
    "Platform",
    "Reference",
    "RegistryClient",
    "RegistryLimits",
    "RuntimeConfig",
    "Scheme",
    "SchemeInfo",
    "Slice",
    "SliceReader",
    "Store",
    "TransferStats",
    "Visit",
    "add_layer",
    "add_layer_parts",
    "attachments",
    "canonical_json",
    "check_digest",
    "check_ref",
    "copy_image",
    "entry_names",
    "export_docker_archive",
    "export_oci_dir",
    "fallback_tag",
    "find_in_store",
    "host_platform",
    "image_config",
    "image_index",
    "image_manifest",
    "is_attachment",
    "is_registry_reference",
    "layout_entry",
    "layout_image",
    "layout_images",
    "load_json_object",
    "open_in_store",
    "parse_image_ref",
    "parse_index",
    "parse_manifest",
    "parse_reference",
    "platform_tag",
    "pull_image",
    "push_image",
    "put_image",
    "put_index",
    "remove_abandoned",
    "rfc3339",
    "select_manifest",
    "store_image",
    "walk_index",
    "write_cache_file",
    "write_layer",
    "write_layer_parts",
    "write_output",
    "write_tar",
]
