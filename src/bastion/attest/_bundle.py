"""Sigstore bundles (protobuf-specs ``sigstore_bundle.proto``, JSON form) around DSSE envelopes.

We write v0.3 with key-based verification material and no transparency-log entry, the form cosign
writes when signing with a key file and no upload::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": <base64 SHA-256 of the DER SPKI>}, "tlogEntries": []},
     "dsseEnvelope": {"payload": ..., "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"keyid": <hint>, "sig": ...}]}}

``timestampVerificationData`` is left out: an unset message is omitted in protobuf JSON.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from bastion.attest._dsse import (
    PAYLOAD_TYPE_IN_TOTO,
    Envelope,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from bastion.attest._keys import key_hint
from bastion.attest._oci import BUNDLE_MEDIA_TYPE
from bastion.attest._signer import Signer, Verifier
from bastion.attest._statement import Statement, parse_statement
from bastion.documents import load_json
from bastion.errors import InputError, VerificationFailed

# Every bundle version we can read: 0.1 and 0.2 name the version in a parameter, 0.3 in the subtype
# (protobuf-specs: "application/vnd.dev.sigstore.bundle+json;version=0.3" is also accepted for 0.3).
BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        BUNDLE_MEDIA_TYPE,
    }
)


class _VerificationMaterial(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    publicKey: dict[str, JsonValue] | None = None
    x509CertificateChain: JsonValue = None
    certificate: JsonValue = None


class _Bundle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    mediaType: str
    verificationMaterial: _VerificationMaterial
    dsseEnvelope: dict[str, JsonValue] | None = None
    messageSignature: JsonValue = None


def bundle_from_envelope(envelope: Envelope, signer: Signer) -> bytes:
    doc = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(signer.public_key)}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_dict(),
    }
    return json.dumps(doc, separators=(",", ":")).encode("ascii")


def sign_statement(statement: Statement, signer: Signer) -> bytes:
    """The Sigstore bundle (JSON bytes) of ``statement`` signed by ``signer`` in a DSSE envelope."""
    return bundle_from_envelope(sign_envelope(statement.to_json(), PAYLOAD_TYPE_IN_TOTO, signer), signer)


def verify_bundle(data: bytes, verifier: Verifier, *, where: str = "bundle") -> Statement:
    """Verify a Sigstore bundle, or a plain DSSE envelope, holding an in-toto statement signed by one of
    the verifier's keys; returns the statement. Anything else raises :class:`VerificationFailed`."""
    try:
        doc = load_json(data, where=where)
    except InputError as error:
        raise VerificationFailed(f"not a JSON document: {error.message}", where=where) from None
    if not isinstance(doc, dict):
        raise VerificationFailed("not a JSON object", where=where)
    if "mediaType" not in doc and "payloadType" in doc:
        # A bare DSSE envelope (protocol.md): any one of its signatures may verify.
        envelope = parse_envelope(doc, where=where)
    else:
        envelope = _bundle_envelope(doc, where)
    verify_envelope(envelope, verifier, payload_types=(PAYLOAD_TYPE_IN_TOTO,), where=where)
    try:
        # protocol.md: parse SERIALIZED_BODY according to PAYLOAD_TYPE; reject if the parsing fails.
        return parse_statement(envelope.payload, where=where)
    except InputError as exc:
        raise VerificationFailed(exc.message, where=where) from None


def _bundle_envelope(doc: dict[str, object], where: str) -> Envelope:
    try:
        bundle = _Bundle.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "bundle"
        raise VerificationFailed(f"malformed Sigstore bundle: {field}: {first['msg']}", where=where) from None
    if bundle.mediaType not in BUNDLE_MEDIA_TYPES:
        raise VerificationFailed(f"unsupported bundle media type {bundle.mediaType!r}", where=where)
    # sigstore_bundle.proto: the content is a oneof, message_signature or dsse_envelope.
    if bundle.dsseEnvelope is None:
        if bundle.messageSignature is not None:
            raise VerificationFailed(
                "message-signature bundles are not supported: expected a DSSE envelope (an attestation)",
                where=where,
            )
        raise VerificationFailed("the bundle holds no dsseEnvelope", where=where)
    if bundle.messageSignature is not None:
        raise VerificationFailed("the bundle holds both a messageSignature and a dsseEnvelope", where=where)
    envelope = parse_envelope(bundle.dsseEnvelope, where=f"{where}: dsseEnvelope")
    # Sigstore client spec: a bundle's DSSE envelope carries exactly one signature (sigstore-go refuses
    # its own dsse-2sigs test bundle); more would make "which one did the verifier check" ambiguous.
    if len(envelope.signatures) != 1:
        raise VerificationFailed(
            f"a bundle's DSSE envelope must hold exactly one signature, this one holds {len(envelope.signatures)}",
            where=where,
        )
    material = bundle.verificationMaterial
    if material.x509CertificateChain is not None or material.certificate is not None:
        raise VerificationFailed(
            "certificate-based (keyless) bundles are not supported yet: only bundles signed with a key can be"
            " verified",
            where=where,
        )
    # The hint (base64 or, as model-signing writes it, hex) is unauthenticated: it is neither required
    # to match nor used to pick a key; every trusted key is tried. Any embedded key is ignored too.
    if material.publicKey is None:
        raise VerificationFailed("verificationMaterial names no public key", where=where)
    return envelope
