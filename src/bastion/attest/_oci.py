"""Sigstore bundles attached to images, laid out as cosign v3 does (cosign's ``specs/BUNDLE_SPEC.md``).

One OCI 1.1 image manifest per bundle: ``artifactType`` the bundle media type, the empty config, one
layer (the bundle, titled ``sha256-<hex>.sigstore.json``), ``subject`` the image, and the annotations
``dev.sigstore.bundle.content`` (``dsse-envelope``), ``dev.sigstore.bundle.predicateType`` and
``org.opencontainers.image.created``, which are also copied onto the referrers entry so a listing
needs no manifest read. In the local store the manifest is recorded with :meth:`Store.attach`; the
registry client attaches the same manifest remotely (referrers API or fallback tag).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from bastion.config import DEFAULT_MAX_ATTESTATION_SIZE, ENV_MAX_ATTESTATION_SIZE
from bastion.documents import load_json
from bastion.errors import InputError, IntegrityError
from bastion.oci import (
    ANNOTATION_CREATED,
    MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    Store,
    canonical_json,
    image_manifest,
    parse_manifest,
)

# The Sigstore bundle media type (protobuf-specs), also the artifactType of attached bundles. Kept
# here, not in _bundle, so that listing attestations does not load the cryptography code.
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
ANNOTATION_CONTENT = "dev.sigstore.bundle.content"
ANNOTATION_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
_TITLE = "org.opencontainers.image.title"
_EMPTY = b"{}"


@dataclass(frozen=True)
class AttachedBundle:
    """An attestation found on an image: its artifact manifest, predicate type and bundle bytes."""

    manifest: Descriptor
    predicate_type: str
    created: str
    bundle: bytes


def bundle_manifest(
    bundle: bytes,
    *,
    subject: Descriptor,
    predicate_type: str,
    created: str,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """The artifact manifest that attaches ``bundle`` to ``subject`` (canonical JSON); ``annotations``
    are added to the standard ones."""
    hexdigest = hashlib.sha256(bundle).hexdigest()
    layer = Descriptor(
        BUNDLE_MEDIA_TYPE, "sha256:" + hexdigest, len(bundle), {_TITLE: f"sha256-{hexdigest}.sigstore.json"}
    )
    empty = Descriptor(MEDIA_TYPE_EMPTY, "sha256:" + hashlib.sha256(_EMPTY).hexdigest(), len(_EMPTY))
    manifest = image_manifest(
        empty,
        [layer],
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=BUNDLE_MEDIA_TYPE,
        annotations={**_annotations(predicate_type, created), **(annotations or {})},
    )
    return canonical_json(manifest)


def attach_bundle(
    store: Store,
    subject: Descriptor,
    bundle: bytes,
    *,
    predicate_type: str,
    created: str,
    annotations: Mapping[str, str] | None = None,
) -> Descriptor:
    """Store ``bundle`` and its artifact manifest, and record it as a referrer of ``subject``."""
    store.put_blob(_EMPTY, MEDIA_TYPE_EMPTY)
    store.put_blob(bundle, BUNDLE_MEDIA_TYPE)
    data = bundle_manifest(
        bundle, subject=subject, predicate_type=predicate_type, created=created, annotations=annotations
    )
    desc = store.put_blob(data, MEDIA_TYPE_MANIFEST)
    entry = Descriptor(
        MEDIA_TYPE_MANIFEST,
        desc.digest,
        desc.size,
        {**_annotations(predicate_type, created), **(annotations or {})},
        artifact_type=BUNDLE_MEDIA_TYPE,
    )
    return store.attach(entry, subject.digest)


def stored_bundles(
    store: Store,
    subject: str,
    predicate_type: str | None = None,
    *,
    max_size: int = DEFAULT_MAX_ATTESTATION_SIZE,
) -> list[AttachedBundle]:
    """The bundles attached to ``subject`` in the local store (optionally of one predicate type),
    each read back and checked against the digests its manifest names. A bundle is an attestation, not
    a manifest: it may hold up to ``max_size`` bytes (``Settings.max_attestation_size``)."""
    found = []
    for entry in store.referrers(subject, BUNDLE_MEDIA_TYPE):
        kind = entry.annotations.get(ANNOTATION_PREDICATE_TYPE, "")
        if predicate_type is not None and kind != predicate_type:
            continue
        manifest = parse_manifest(store.read_blob(entry.digest), where=entry.digest)
        if manifest.subject is None or manifest.subject.digest != subject or len(manifest.layers) != 1:
            raise IntegrityError("attestation manifest does not refer to its image", where=entry.digest)
        layer = manifest.layers[0]
        if layer.size > max_size:
            raise InputError(
                f"attestation {layer.digest} is {layer.size:,} bytes, more than the {max_size:,} accepted",
                where=entry.digest,
                hint=f"{ENV_MAX_ATTESTATION_SIZE} raises the limit",
            )
        bundle = store.read_blob(layer.digest, max_size=max_size)
        if len(bundle) != layer.size:
            raise IntegrityError(
                f"bundle {layer.digest} is {len(bundle)} bytes, its descriptor says {layer.size}"
            )
        found.append(AttachedBundle(entry, kind, entry.annotations.get(ANNOTATION_CREATED, ""), bundle))
    return found


def bundle_key_hint(bundle: bytes) -> str:
    """The ``verificationMaterial.publicKey.hint`` of a bundle ("" when it has none)."""
    try:
        hint = load_json(bundle, where="bundle")["verificationMaterial"]["publicKey"]["hint"]
    except (InputError, KeyError, TypeError):
        return ""
    return hint if isinstance(hint, str) else ""


def pem_key_hint(pem: bytes) -> str:
    """The hint of a PEM public key file (base64 of the SHA-256 of its DER SPKI), computed from the
    PEM armour alone (RFC 7468): no key parsing, so no cryptography import."""
    lines = pem.decode("ascii", errors="replace").strip().splitlines()
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        return ""
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        return ""
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _annotations(predicate_type: str, created: str) -> dict[str, str]:
    return {
        ANNOTATION_CONTENT: "dsse-envelope",
        ANNOTATION_PREDICATE_TYPE: predicate_type,
        ANNOTATION_CREATED: created,
    }
