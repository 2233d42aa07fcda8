"""cosign's legacy tag-based layout, read only: ``sha256-<hex>.att`` and ``sha256-<hex>.sig``.

Before OCI 1.1 referrers, cosign stored everything attached to the image with digest ``sha256:<hex>``
under tags of the same repository (cosign ``specs/SIGNATURE_SPEC.md`` "Tag-based Discovery": replace
``:`` with ``-`` and append ``.sig``; attestations the same with ``.att``). Each tag is one image
manifest whose layers are the attached items:

* ``.att`` (``specs/ATTESTATION_SPEC.md``): each layer a DSSE envelope, media type
  ``application/vnd.dsse.envelope.v1+json``, the statement's predicate type copied into the layer
  annotation ``predicateType`` (cosign ``cli/attest``);
* ``.sig`` (SIGNATURE_SPEC.md "OCI Image Manifest V1"): each layer a Simple Signing payload, media type
  ``application/vnd.dev.cosign.simplesigning.v1+json``, its base64 signature in the layer annotation
  ``dev.cosignproject.cosign/signature``.

Nothing in a tag is authenticated: annotations only help to find things; verification reads the
signed payload.
"""

from __future__ import annotations

from typing import Any, Literal

from bastion.documents import load_json
from bastion.errors import InputError, VerificationFailed
from bastion.oci import Manifest, check_digest

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_PREDICATE_TYPE = "predicateType"
# SIGNATURE_SPEC.md "Simple Signing": the critical.type of cosign signatures.
SIGNATURE_TYPE = "cosign container image signature"


def legacy_tag(digest: str, kind: Literal["att", "sig"]) -> str:
    """SIGNATURE_SPEC.md "Tag-based Discovery": ``sha256:<hex>`` → ``sha256-<hex>.<kind>``."""
    return check_digest(digest).replace(":", "-") + "." + kind


def dsse_layers(manifest: Manifest) -> list[tuple[int, str]]:
    """(layer index, annotated predicate type) of every DSSE envelope layer of an ``.att`` manifest."""
    return [
        (i, layer.annotations.get(ANNOTATION_PREDICATE_TYPE, ""))
        for i, layer in enumerate(manifest.layers)
        if layer.media_type == DSSE_MEDIA_TYPE
    ]


def signature_layers(manifest: Manifest) -> list[int]:
    return [i for i, layer in enumerate(manifest.layers) if layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE]


def envelope_key_hint(envelope: bytes) -> str:
    """The ``keyid`` of a DSSE envelope's first signature ("" when it has none); a hint only."""
    try:
        keyid = load_json(envelope, where="envelope")["signatures"][0].get("keyid")
    except (InputError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return keyid if isinstance(keyid, str) else ""


def check_simple_signing(payload: bytes, subject: str, *, where: str) -> dict[str, Any]:
    """Parse a Simple Signing payload whose signature was verified, and check that it names ``subject``.

    SIGNATURE_SPEC.md "Payloads": ``critical.type`` is ``cosign container image signature`` and
    ``critical.image.docker-manifest-digest`` the signed image's digest; the docker-reference is ignored.
    """
    try:
        doc = load_json(payload, where=where)
    except InputError as error:
        raise VerificationFailed(f"the signed payload is not JSON: {error.message}", where=where) from None
    try:
        critical = doc["critical"]
        kind = critical["type"]
        signed = critical["image"]["docker-manifest-digest"]
    except (KeyError, TypeError):
        raise VerificationFailed("not a cosign Simple Signing payload", where=where) from None
    if not isinstance(doc, dict):
        raise VerificationFailed("not a cosign Simple Signing payload", where=where)
    if kind != SIGNATURE_TYPE:
        raise VerificationFailed(f"critical.type is {kind!r}, not {SIGNATURE_TYPE!r}", where=where)
    if signed != subject:
        raise VerificationFailed(
            f"the signature is for {signed}, not for {subject} (it was copied from another image)",
            where=where,
        )
    return doc
