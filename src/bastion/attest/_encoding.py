"""The one DSSE base64 decoder (secure-systems-lab/dsse ``protocol.md``, ``envelope.md``), kept apart
from :mod:`bastion.attest._dsse` so that reading a payload without verifying it (listing, ``attest get``
without ``--verify``) does not load the signing stack.
"""

from __future__ import annotations

import base64
import binascii
import re

from bastion.documents import load_json
from bastion.errors import InputError, VerificationFailed

__all__ = ["decode_base64", "unverified_payload"]

_STD = re.compile(r"[A-Za-z0-9+/]*=*")
_URLSAFE = re.compile(r"[A-Za-z0-9_-]*=*")


def decode_base64(text: str, *, field: str, where: str) -> bytes:
    """protocol.md: standard or URL-safe base64, verifiers MUST accept either; padding may be omitted
    (protobuf JSON). Only the canonical encoding of the bytes is accepted, so that a changed character
    can never decode to the same bytes unnoticed."""
    if _STD.fullmatch(text):
        altchars = b"+/"
    elif _URLSAFE.fullmatch(text):
        altchars = b"-_"
    else:
        raise VerificationFailed(f"{field} is not base64", where=where)
    bare = text.rstrip("=")
    try:
        data = base64.b64decode(bare + "=" * (-len(bare) % 4), altchars=altchars, validate=True)
    except binascii.Error:
        raise VerificationFailed(f"{field} is not base64", where=where) from None
    if (
        base64.b64encode(data, altchars=altchars).decode("ascii").rstrip("=") != bare
        or len(text) - len(bare) > 2
    ):
        raise VerificationFailed(f"{field} is not canonical base64", where=where)
    return data


def unverified_payload(data: bytes, *, where: str) -> bytes:
    """The payload of a Sigstore bundle's DSSE envelope, or of a bare DSSE envelope, decoded as strictly
    as verification decodes it, its signature not checked: an :class:`InputError` when there is none."""
    doc = load_json(data, where=where)
    envelope = doc.get("dsseEnvelope", doc) if isinstance(doc, dict) else None
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(payload, str):
        raise InputError("not a Sigstore bundle or DSSE envelope with a payload", where=where)
    try:
        return decode_base64(payload, field="payload", where=where)
    except VerificationFailed as exc:
        raise InputError(exc.message, where=where) from None
