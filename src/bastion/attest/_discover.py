"""Finding the attestations of an image, wherever it is: the local store, an ``oci-dir://`` layout or a
registry. Only attestations and the documents that lead to them are read, never image layers.

Where attestations are found, for each image manifest (and the index the reference names, since
cosign attaches to whatever digest it is given):

* OCI 1.1 artifacts whose ``subject`` is the manifest and whose ``artifactType`` is a Sigstore bundle
  (cosign ``specs/BUNDLE_SPEC.md``): in a registry through the referrers API or the fallback tag
  (:meth:`bastion.oci.RegistryClient.referrers`), in the local store through
  :meth:`bastion.oci.Store.referrers`, in any other OCI layout by reading every manifest its
  ``index.json`` lists and keeping those with that ``subject`` (the layout has no referrers API);
* cosign's legacy ``sha256-<hex>.att`` and ``.sig`` tags (:mod:`bastion.attest._legacy`).

Every document and blob read is checked against its digest; an artifact whose manifest does not name
the image it was listed for is refused (IntegrityError). Annotations (predicate type, creation time)
only help to find things: nothing here is verified cryptographically (see :mod:`bastion.attest._check`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bastion.attest._encoding import unverified_payload
from bastion.attest._legacy import (
    ANNOTATION_SIGNATURE,
    DSSE_MEDIA_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    dsse_layers,
    envelope_key_hint,
    legacy_tag,
    signature_layers,
)
from bastion.attest._oci import ANNOTATION_PREDICATE_TYPE, bundle_key_hint
from bastion.attest._predicates import SIGNATURE_PREDICATE_TYPE
from bastion.config import ENV_MAX_ATTESTATION_SIZE, Settings
from bastion.documents import load_json
from bastion.errors import InputError, IntegrityError
from bastion.oci import (
    ANNOTATION_CREATED,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    SCHEMES,
    Descriptor,
    ImageRef,
    Platform,
    Scheme,
    Store,
    host_platform,
    layout_image,
    load_json_object,
    parse_image_ref,
    parse_manifest,
    store_image,
    walk_index,
)

if TYPE_CHECKING:
    from bastion.oci import Reference, RegistryClient

# Manifests, indexes, configs and simple-signing payloads; attestations (bundles, DSSE envelopes) may
# be larger, up to Settings.max_attestation_size.
_MAX_DOCUMENT = 4 * 1024 * 1024
# sigstore_bundle.proto: every bundle media type starts so (v0.1/0.2 with a version parameter).
_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
#: The references that can carry attestations: the local store, OCI layouts and registries.
ATTESTED_SCHEMES = frozenset(s for s, info in SCHEMES.items() if info.attestations)


class AttestationFormat(StrEnum):
    bundle = "sigstore-bundle"  # OCI 1.1 artifact holding a Sigstore bundle (cosign v3)
    legacy_dsse = "cosign-dsse"  # a DSSE envelope layer of a sha256-<hex>.att tag
    legacy_signature = "cosign-simplesigning"  # a simple-signing layer of a sha256-<hex>.sig tag


@dataclass(frozen=True)
class Attestation:
    """One attestation (or legacy signature) found on an image; unverified."""

    subject: str  # the digest it is attached to: a platform manifest, or the index
    platform: str  # the platform of that manifest; "" for the index
    predicate_type: str  # as annotated, else as the (unverified) statement says
    created: str  # org.opencontainers.image.created when recorded, else ""
    format: AttestationFormat
    media_type: str  # of the content: the bundle's, DSSE's or simple signing's
    manifest: str  # the digest of the artifact manifest (or legacy tag manifest) holding it
    digest: str  # the digest of the content blob
    key_hint: str  # an unauthenticated hint naming the signing key, "" when there is none
    source: str  # how it was found: "referrers", "store", "layout", or the legacy tag
    content: bytes = field(repr=False)
    signature: bytes = field(default=b"", repr=False)  # legacy .sig: the signature annotation, decoded

    def to_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "platform": self.platform,
            "predicateType": self.predicate_type,
            "created": self.created,
            "format": str(self.format),
            "mediaType": self.media_type,
            "manifest": self.manifest,
            "digest": self.digest,
            "keyHint": self.key_hint,
            "source": self.source,
        }


@dataclass(frozen=True)
class Target:
    """A manifest attestations may be attached to: a platform image, or the index (platform "")."""

    descriptor: Descriptor
    platform: str

    @property
    def digest(self) -> str:
        return self.descriptor.digest


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries; credentials come from the environment or Docker's config."""

    insecure: bool = False
    ca_file: Path | None = None

    def client(self, registry: str) -> RegistryClient:
        from bastion.oci import RegistryClient

        return RegistryClient(registry, insecure=self.insecure, ca_file=self.ca_file)


class ImageSource(ABC):
    """An image reference resolved to its top descriptor, with access to what is attached to it."""

    def __init__(self, reference: str, top: Descriptor, source_name: str, max_attestation_size: int) -> None:
        self.reference = reference
        self.top = top
        self._source_name = source_name
        self.max_attestation_size = max_attestation_size

    # -- what a backend provides -------------------------------------------------------------------

    @abstractmethod
    def read_document(self, desc: Descriptor) -> bytes:
        """A manifest or index, checked against its digest."""

    @abstractmethod
    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        """A small blob, checked against its digest and size."""

    @abstractmethod
    def referrer_entries(self, digest: str) -> list[Descriptor]:
        """Descriptors of the artifacts whose ``subject`` is ``digest``."""

    @abstractmethod
    def legacy_manifest(self, tag: str) -> Descriptor | None:
        """The manifest tagged ``tag`` (a cosign legacy tag) next to the image, if any."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        pass

    def read_attestation(self, desc: Descriptor) -> bytes:
        """A bundle or DSSE envelope, refused before it is read when its descriptor states more than
        :attr:`max_attestation_size` bytes."""
        limit = self.max_attestation_size
        if desc.size > limit:
            raise InputError(
                f"attestation {desc.digest} is {desc.size:,} bytes, more than the {limit:,} accepted",
                where=self.reference,
                hint=f"{ENV_MAX_ATTESTATION_SIZE} raises the limit",
            )
        return self.read_blob(desc, limit)

    # -- targets -------------------------------------------------------------------------------------

    @property
    def is_index(self) -> bool:
        return self.top.media_type in INDEX_MEDIA_TYPES

    def targets(self, platform: str | None = None, *, host_default: bool = False) -> list[Target]:
        """The platform manifests (all, the one ``platform`` names, or with ``host_default`` the host's
        when there are several), each once."""
        manifests = [Target(d, self._platform_of(d)) for d in self._manifests(self.top)]
        if not manifests:
            raise InputError(f"{self.reference} holds no image manifest")
        if platform is None and not (host_default and len(manifests) > 1):
            return manifests
        wanted = Platform.parse(platform) if platform else host_platform()
        chosen = [t for t in manifests if t.platform and Platform.parse(t.platform).matches(wanted)]
        if not chosen:
            raise InputError(
                f"{self.reference} has no image for {wanted}",
                hint="platforms: "
                + ", ".join(t.platform or "unknown" for t in manifests)
                + "; use --platform",
            )
        return chosen[:1]

    def index_target(self) -> Target | None:
        """The index the reference names (attestations attached to it cover every platform)."""
        return Target(self.top, "") if self.is_index else None

    def _manifests(self, top: Descriptor) -> list[Descriptor]:
        """The image manifests under ``top``, each once; the walk is bounded in depth and count."""
        if top.media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
            raise InputError(f"{self.reference}: {top.digest} is a {top.media_type}, not an image")
        return [
            visit.descriptor
            for visit in walk_index(top, self.read_document, where=self.reference, skip=_ignored)
            if visit.descriptor.media_type in MANIFEST_MEDIA_TYPES
        ]

    def _platform_of(self, desc: Descriptor) -> str:
        if desc.platform is not None:
            return str(desc.platform)
        manifest = parse_manifest(self.read_document(desc), where=desc.digest)
        config = load_json_object(self.read_blob(manifest.config, _MAX_DOCUMENT), "config", desc.digest)
        try:
            return str(Platform.from_json(config, where=manifest.config.digest))
        except IntegrityError:
            return ""  # an artifact, or an image config without os/architecture

    # -- attestations --------------------------------------------------------------------------------

    def attestations(self, target: Target, predicate_type: str | None = None) -> list[Attestation]:
        """Everything attached to ``target`` (of one predicate type, when given), oldest first as
        recorded; referrers first, then legacy ``.att`` and ``.sig`` tags."""
        return [*self._bundles(target, predicate_type), *self._legacy(target, predicate_type)]

    def _bundles(self, target: Target, predicate_type: str | None) -> Iterator[Attestation]:
        for entry in self.referrer_entries(target.digest):
            if not entry.artifact_type.startswith(_BUNDLE_PREFIX):
                continue
            annotated = entry.annotations.get(ANNOTATION_PREDICATE_TYPE, "")
            if predicate_type is not None and annotated and annotated != predicate_type:
                continue  # the annotation saves reading the bundle; the statement decides later
            what = f"attestation {entry.digest} of {target.digest}"
            manifest = parse_manifest(self.read_document(entry), where=what)
            # BUNDLE_SPEC.md "Publishing": subject is the image, the one layer is the bundle.
            if manifest.subject is None or manifest.subject.digest != target.digest:
                raise IntegrityError(
                    "the artifact manifest does not name the image as its subject", where=what
                )
            if len(manifest.layers) != 1:
                raise IntegrityError(
                    f"a bundle artifact holds {len(manifest.layers)} layers, not 1", where=what
                )
            layer = manifest.layers[0]
            bundle = self.read_attestation(layer)
            kind = (
                annotated
                or manifest.annotations.get(ANNOTATION_PREDICATE_TYPE, "")
                or unverified_predicate_type(bundle)
            )
            if predicate_type is not None and kind != predicate_type:
                continue
            created = entry.annotations.get(ANNOTATION_CREATED) or manifest.annotations.get(
                ANNOTATION_CREATED, ""
            )
            yield Attestation(
                target.digest, target.platform, kind, created, AttestationFormat.bundle,
                _bundle_media_type(bundle, layer.media_type), entry.digest, layer.digest,
                bundle_key_hint(bundle), self._source_name, bundle,
            )  # fmt: skip

    def _legacy(self, target: Target, predicate_type: str | None) -> Iterator[Attestation]:
        kinds: tuple[Literal["att", "sig"], ...] = ("att", "sig")
        for kind in kinds:
            if predicate_type is not None and (kind == "sig") != (predicate_type == SIGNATURE_PREDICATE_TYPE):
                continue
            tag = legacy_tag(target.digest, kind)
            desc = self.legacy_manifest(tag)
            if desc is None:
                continue
            manifest = parse_manifest(self.read_document(desc), where=tag)
            if kind == "att":
                for index, annotated in dsse_layers(manifest):
                    layer = manifest.layers[index]
                    if predicate_type is not None and annotated and annotated != predicate_type:
                        continue
                    envelope = self.read_attestation(layer)
                    found = annotated or unverified_predicate_type(envelope)
                    if predicate_type is not None and found != predicate_type:
                        continue
                    yield Attestation(
                        target.digest, target.platform, found, "", AttestationFormat.legacy_dsse,
                        DSSE_MEDIA_TYPE, desc.digest, layer.digest, envelope_key_hint(envelope), tag, envelope,
                    )  # fmt: skip
            else:
                for index in signature_layers(manifest):
                    layer = manifest.layers[index]
                    payload = self.read_blob(layer, _MAX_DOCUMENT)
                    signature = _b64(layer.annotations.get(ANNOTATION_SIGNATURE, ""))
                    yield Attestation(
                        target.digest, target.platform, SIGNATURE_PREDICATE_TYPE, "",
                        AttestationFormat.legacy_signature, SIMPLE_SIGNING_MEDIA_TYPE, desc.digest,
                        layer.digest, "", tag, payload, signature,
                    )  # fmt: skip


# -- backends ----------------------------------------------------------------------------------------


class _LayoutSource(ImageSource):
    """The local store or any OCI image layout (``oci-dir://``)."""

    def __init__(
        self,
        reference: str,
        store: Store,
        top: Descriptor,
        *,
        scan: bool,
        source_name: str,
        max_attestation_size: int,
    ) -> None:
        super().__init__(reference, top, source_name, max_attestation_size)
        self.store = store
        self._scan = scan
        self._by_subject: dict[str, list[Descriptor]] | None = None

    def read_document(self, desc: Descriptor) -> bytes:
        return self.store.read_blob(desc.digest, max_size=_MAX_DOCUMENT)

    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        data = self.store.read_blob(desc.digest, max_size=limit)
        if len(data) != desc.size:
            raise IntegrityError(f"blob {desc.digest} is {len(data)} bytes, its descriptor says {desc.size}")
        return data

    def referrer_entries(self, digest: str) -> list[Descriptor]:
        found = self.store.referrers(digest)
        if not self._scan:
            return found
        if self._by_subject is None:
            # image-layout.md has no referrers API: an artifact is found by reading the manifests that
            # index.json lists and keeping those whose subject is the image (OCI 1.1 manifest.md).
            self._by_subject = {}
            read: set[str] = set()  # index.json may list one manifest many times: each is read once
            for entry in self.store.index().manifests:
                if entry.media_type not in MANIFEST_MEDIA_TYPES or entry.digest in read:
                    continue
                read.add(entry.digest)
                if not self.store.has_blob(entry.digest):
                    continue
                manifest = self.store.read_manifest(entry)
                if manifest.subject is not None:
                    self._by_subject.setdefault(manifest.subject.digest, []).append(
                        Descriptor(
                            entry.media_type,
                            entry.digest,
                            entry.size,
                            {**manifest.annotations, **entry.annotations},
                            artifact_type=entry.artifact_type
                            or manifest.artifact_type
                            or manifest.config.media_type,
                        )
                    )
        known = {d.digest for d in found}
        return found + [d for d in self._by_subject.get(digest, []) if d.digest not in known]

    def legacy_manifest(self, tag: str) -> Descriptor | None:
        for name, desc in self.store.list_tags().items():
            if name == tag or name.endswith(":" + tag):
                return desc
        return None


class _RegistrySource(ImageSource):
    def __init__(
        self, reference: str, client: RegistryClient, ref: Reference, max_attestation_size: int
    ) -> None:
        self.client = client
        self.repo = ref.repository
        top, _data = client.get_manifest(ref.repository, ref.ref)
        super().__init__(reference, top, "referrers", max_attestation_size)

    def read_document(self, desc: Descriptor) -> bytes:
        got, data = self.client.get_manifest(self.repo, desc.digest)
        if got.size != desc.size:
            raise IntegrityError(
                f"manifest {desc.digest} is {got.size} bytes, its descriptor says {desc.size}"
            )
        return data

    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        if desc.size > limit:
            raise InputError(f"blob {desc.digest} is {desc.size} bytes, more than the limit of {limit}")
        with self.client.open_blob(self.repo, desc.digest, desc.size) as reader:
            return reader.read()  # the reader raises IntegrityError at the end on a wrong digest or size

    def referrer_entries(self, digest: str) -> list[Descriptor]:
        return self.client.referrers(self.repo, digest)

    def legacy_manifest(self, tag: str) -> Descriptor | None:
        return self.client.head_manifest(self.repo, tag)

    def close(self) -> None:
        self.client.close()


@contextlib.contextmanager
def open_image(
    reference: str | ImageRef, settings: Settings, registry: RegistryOptions | None = None
) -> Iterator[ImageSource]:
    """Resolve ``reference`` (a store name, ``oci-dir://PATH[:TAG]`` or a registry reference, parsed by
    :func:`bastion.oci.parse_image_ref`) for reading what is attached to it."""
    ref = parse_image_ref(reference).require(ATTESTED_SCHEMES, "reading attestations")
    source: ImageSource
    found = store_image(ref, settings.store_dir)
    if found is None and ref.scheme is Scheme.registry:
        remote = ref.remote
        client = (registry or RegistryOptions()).client(remote.registry)
        try:
            source = _RegistrySource(ref.text, client, remote, settings.max_attestation_size)
        except BaseException:
            client.close()
            raise
    else:
        # The store keeps a referrers list; any other layout is scanned for subjects (_LayoutSource).
        layout = ref.scheme is Scheme.oci_dir
        store, desc = found or layout_image(ref, settings.store_dir)
        source = _LayoutSource(
            ref.text, store, desc, scan=layout, source_name="layout" if layout else "store",
            max_attestation_size=settings.max_attestation_size,
        )  # fmt: skip
    try:
        yield source
    finally:
        source.close()


def unverified_predicate_type(data: bytes) -> str:
    """The predicateType of the statement inside a bundle or DSSE envelope, read without checking any
    signature (used only to label and filter; verification reads it again from the verified payload);
    "" when there is none."""
    try:
        kind = load_json(unverified_payload(data, where="attestation"), where="statement").get(
            "predicateType", ""
        )
    except (InputError, AttributeError):
        return ""
    return kind if isinstance(kind, str) else ""


def _bundle_media_type(bundle: bytes, fallback: str) -> str:
    try:
        media_type = load_json(bundle, where="bundle").get("mediaType")
    except (InputError, AttributeError):
        return fallback
    return media_type if isinstance(media_type, str) else fallback


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""  # verification then fails with "no signature verifies"


def _ignored(desc: Descriptor) -> bool:
    return desc.platform is not None and desc.platform.is_unknown
