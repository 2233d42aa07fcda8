"""DSSE: the pre-authentication encoding, the JSON envelope, signing and verifying.

Spec: secure-systems-lab/dsse ``protocol.md`` (v1.0.0) and ``envelope.md``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from bastion.attest._encoding import decode_base64
from bastion.attest._keys import PublicKey
from bastion.attest._signer import Signer, Verifier
from bastion.errors import VerificationFailed

PAYLOAD_TYPE_IN_TOTO = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """protocol.md: PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, where LEN is
    the ASCII decimal byte length with no leading zeros and type is UTF8(PAYLOAD_TYPE)."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def to_dict(self) -> dict[str, object]:
        """envelope.md's JSON envelope; we write standard base64 and omit an empty keyid."""
        return {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": _b64(s.sig)} if s.keyid else {"sig": _b64(s.sig)}
                for s in self.signatures
            ],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode("ascii")


def sign_envelope(payload: bytes, payload_type: str, signer: Signer) -> Envelope:
    """protocol.md "To sign": SIGNATURE = Sign(PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY))."""
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(payload, payload_type, (Signature(signature, signer.key_id),))


class _SignatureModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    sig: str
    keyid: str | None = None  # unauthenticated; some writers put null (model-signing), most omit it


class _EnvelopeModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)
    payload: str = ""  # envelope.md: empty fields may be omitted
    payloadType: str = ""
    signatures: tuple[_SignatureModel, ...] = ()


def parse_envelope(doc: object, *, where: str = "DSSE envelope") -> Envelope:
    """The envelope in a decoded JSON value; protocol.md "To verify": reject if decoding fails."""
    try:
        model = _EnvelopeModel.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "envelope"
        raise VerificationFailed(f"malformed DSSE envelope: {field}: {first['msg']}", where=where) from None
    payload = decode_base64(model.payload, field="payload", where=where)
    signatures = tuple(
        Signature(decode_base64(s.sig, field=f"signatures.{i}.sig", where=where), s.keyid or "")
        for i, s in enumerate(model.signatures)
    )
    return Envelope(payload, model.payloadType, signatures)


def verify_envelope(
    envelope: Envelope,
    verifier: Verifier,
    *,
    payload_types: tuple[str, ...] = (PAYLOAD_TYPE_IN_TOTO,),
    where: str = "DSSE envelope",
) -> PublicKey:
    """protocol.md "To verify", threshold 1: some signature verifies over the PAE with some trusted key
    (the keyid is a hint only and is not used), and the payload type is one we support. Returns the key."""
    if not envelope.signatures:
        raise VerificationFailed("the DSSE envelope holds no signature", where=where)
    message = pae(envelope.payload_type, envelope.payload)
    key = next(
        (k for s in envelope.signatures if (k := verifier.find_key(message, s.sig)) is not None),
        None,
    )
    if key is None:
        raise VerificationFailed(
            f"no signature verifies with the {len(verifier.keys)} trusted key(s)"
            " (wrong key, or the payload or signature was altered)",
            where=where,
        )
    # protocol.md: reject if PAYLOAD_TYPE is not a supported type.
    if envelope.payload_type not in payload_types:
        raise VerificationFailed(
            f"unsupported payload type {envelope.payload_type!r} (expected {' or '.join(payload_types)})",
            where=where,
        )
    return key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
