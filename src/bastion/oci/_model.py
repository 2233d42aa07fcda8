"""OCI wire formats: media types, descriptors, image configs, manifests and indexes.

Everything Bastion writes is serialised by :func:`canonical_json` (sorted keys, no whitespace, UTF-8),
so the same inputs always give the same digest. The OCI image spec does not require a canonical form;
we pick one and use it everywhere. Documents read from elsewhere are kept as the bytes we were given:
their digest is the digest of those bytes, never of a re-serialisation.

Shapes follow the OCI image spec v1.1: ``descriptor.md``, ``config.md``, ``manifest.md``,
``image-index.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion._clock import rfc3339
from bastion.documents import load_json
from bastion.errors import InputError, IntegrityError, InternalError
from bastion.oci._platform import Platform

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_EMPTY = "application/vnd.oci.empty.v1+json"
MEDIA_TYPE_OCTET_STREAM = "application/octet-stream"
# Docker schema 2 documents have the same structure as their OCI counterparts; we read them, never write.
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

INDEX_MEDIA_TYPES = frozenset({MEDIA_TYPE_INDEX, MEDIA_TYPE_DOCKER_LIST})
MANIFEST_MEDIA_TYPES = frozenset({MEDIA_TYPE_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"

# descriptor.md "Digests": we only produce and accept sha256 (the spec's one MUST-support algorithm).
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")


def canonical_json(obj: object) -> bytes:
    """The one serialisation used for every JSON document Bastion writes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_digest(digest: str, *, where: str | None = None) -> str:
    """Return ``digest`` if it is a well-formed ``sha256:<64 hex>``; it is used to build file paths."""
    if not _DIGEST_RE.fullmatch(digest):
        raise IntegrityError(f"not a sha256 digest: {digest!r}", where=where)
    return digest


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor. ``annotations`` are compared but not hashed."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    platform: Platform | None = None
    artifact_type: str = ""

    def __post_init__(self) -> None:
        check_digest(self.digest)
        if self.size < 0:
            raise InternalError(f"negative size in descriptor for {self.digest}")

    @property
    def ref_name(self) -> str | None:
        return self.annotations.get(ANNOTATION_REF_NAME)

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        return Descriptor(
            self.media_type, self.digest, self.size, dict(annotations), self.platform, self.artifact_type
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @classmethod
    def from_json(cls, obj: object, *, where: str | None = None) -> Descriptor:
        d = _obj(obj, "descriptor", where)
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise IntegrityError(f"descriptor size is not a non-negative integer: {size!r}", where=where)
        platform = d.get("platform")
        return cls(
            media_type=_str(d, "mediaType", where),
            digest=check_digest(_str(d, "digest", where), where=where),
            size=size,
            annotations=_annotations(d, where),
            platform=None if platform is None else Platform.from_json(platform, where=where),
            artifact_type=_str(d, "artifactType", where, ""),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """The ``config`` object of an image config (config.md "Properties"); empty fields are omitted."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp"
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    stop_signal: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in sorted(self.exposed_ports)}
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    comment: str = ""
    empty_layer: bool = False


def image_config(
    platform: Platform,
    runtime: RuntimeConfig,
    diff_ids: Sequence[str],
    *,
    source_date_epoch: int,
    history: Sequence[HistoryEntry] = (),
) -> dict[str, Any]:
    """An image config (config.md). Without ``history``, one entry per layer is recorded."""
    created = rfc3339(source_date_epoch)
    entries = list(history) or [HistoryEntry(created_by="bastion build") for _ in diff_ids]
    if sum(1 for h in entries if not h.empty_layer) != len(diff_ids):
        raise InternalError(f"{len(entries)} history entries do not match {len(diff_ids)} layers")
    hist: list[dict[str, Any]] = []
    for h in entries:
        item: dict[str, Any] = {"created": created, "created_by": h.created_by}
        if h.comment:
            item["comment"] = h.comment
        if h.empty_layer:
            item["empty_layer"] = True
        hist.append(item)
    out: dict[str, Any] = {
        **platform.to_json(),  # architecture, os and variant as index descriptors write them
        "config": runtime.to_json(),
        "created": created,
        "history": hist,
        "rootfs": {"type": "layers", "diff_ids": [check_digest(d) for d in diff_ids]},
    }
    return out


def image_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    annotations: Mapping[str, str] | None = None,
    subject: Descriptor | None = None,
    artifact_type: str = "",
) -> dict[str, Any]:
    """An image manifest (manifest.md); ``subject``/``artifactType`` are for attached artifacts."""
    out: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": _plain(config).to_json(),
        "layers": [_plain(layer).to_json() for layer in layers],
    }
    if annotations:
        out["annotations"] = dict(annotations)
    if subject is not None:
        out["subject"] = _plain(subject).to_json()
    if artifact_type:
        out["artifactType"] = artifact_type
    return out


def image_index(
    manifests: Sequence[Descriptor], *, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An image index (image-index.md); each manifest descriptor should carry its ``platform``."""
    out: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations:
        out["annotations"] = dict(annotations)
    return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str = ""


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)


def parse_manifest(data: bytes, *, where: str | None = None) -> Manifest:
    d = load_json_object(data, "manifest", where)
    _schema_version(d, where)
    layers = d.get("layers")
    if not isinstance(layers, list):
        raise IntegrityError("manifest has no layers list", where=where)
    subject = d.get("subject")
    return Manifest(
        media_type=_str(d, "mediaType", where, MEDIA_TYPE_MANIFEST),
        config=Descriptor.from_json(d.get("config"), where=where),
        layers=tuple(Descriptor.from_json(x, where=where) for x in layers),
        annotations=_annotations(d, where),
        subject=None if subject is None else Descriptor.from_json(subject, where=where),
        artifact_type=_str(d, "artifactType", where, ""),
    )


def parse_index(data: bytes, *, where: str | None = None) -> Index:
    d = load_json_object(data, "index", where)
    _schema_version(d, where)
    manifests = d.get("manifests")
    if not isinstance(manifests, list):
        raise IntegrityError("index has no manifests list", where=where)
    return Index(
        media_type=_str(d, "mediaType", where, MEDIA_TYPE_INDEX),
        manifests=tuple(Descriptor.from_json(x, where=where) for x in manifests),
        annotations=_annotations(d, where),
    )


def _plain(desc: Descriptor) -> Descriptor:
    """A descriptor without the store's tag annotation, as it belongs inside a manifest."""
    rest = {k: v for k, v in desc.annotations.items() if k != ANNOTATION_REF_NAME}
    return desc if rest == desc.annotations else desc.with_annotations(rest)


def load_json_object(data: bytes, what: str, where: str | None = None) -> dict[str, Any]:
    """Parse a JSON document that must be an object; anything else is refused as corrupt input."""
    try:
        obj = load_json(data, where=where or what)
    except InputError as exc:
        raise IntegrityError(f"{what} is not valid JSON: {exc.message}", where=where) from None
    return _obj(obj, what, where)


def _obj(obj: object, what: str, where: str | None) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise IntegrityError(f"{what} is not a JSON object", where=where)
    return obj


def _str(d: dict[str, Any], key: str, where: str | None, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise IntegrityError(f"{key!r} is missing or not a string", where=where)
    return value


def _schema_version(d: dict[str, Any], where: str | None) -> None:
    if d.get("schemaVersion") != 2:
        raise IntegrityError(f"unsupported schemaVersion {d.get('schemaVersion')!r}", where=where)


def _annotations(d: dict[str, Any], where: str | None) -> dict[str, str]:
    value = d.get("annotations") or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise IntegrityError("annotations are not a string map", where=where)
    return value
