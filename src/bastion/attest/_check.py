"""Reading and verifying the attestations :mod:`bastion.attest._discover` found.

An attestation verifies when (all must hold, else :class:`~bastion.errors.VerificationFailed`):

1. its signature verifies with one of the trusted keys (DSSE ``protocol.md`` "To verify", through
   :func:`bastion.attest.verify_bundle`; a legacy ``.sig`` over the exact payload bytes);
2. the signed statement's ``predicateType`` is the one asked for (the OCI annotation is not signed);
3. the signed statement names, among its subjects, the digest of the image it was found on
   (cosign ``specs/ATTESTATION_SPEC.md`` "Subject Verification": implementations MUST verify the
   relationship between the subject and the image), so an attestation copied onto another image fails.

With several attestations of one type the newest verified one wins (``created``, then the order found).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import JsonValue

from bastion.attest._discover import (
    Attestation,
    AttestationFormat,
    ImageSource,
    Target,
)
from bastion.attest._encoding import unverified_payload
from bastion.attest._legacy import check_simple_signing
from bastion.attest._predicates import SIGNATURE_PREDICATE_TYPE, predicate_alias
from bastion.documents import load_json
from bastion.errors import InputError, VerificationFailed

if TYPE_CHECKING:
    from bastion.attest._signer import Verifier


@dataclass(frozen=True)
class Opened:
    """An attestation's signed document: an in-toto statement, or a legacy simple-signing payload."""

    attestation: Attestation
    predicate_type: str
    document: dict[str, JsonValue]
    verified: bool

    @property
    def predicate(self) -> JsonValue:
        """The predicate of a statement; a simple-signing payload is its own predicate."""
        if self.attestation.format is AttestationFormat.legacy_signature:
            return self.document
        return self.document.get("predicate")

    @property
    def envelope(self) -> bytes:
        return self.attestation.content


def read_unverified(attestation: Attestation) -> Opened:
    """The document inside ``attestation`` without checking any signature (``attest get`` without
    ``--verify``); malformed content is an InputError."""
    where = _where(attestation)
    if attestation.format is AttestationFormat.legacy_signature:
        return Opened(
            attestation, attestation.predicate_type, _json_object(attestation.content, where), False
        )
    statement = _json_object(unverified_payload(attestation.content, where=where), where)
    kind = statement.get("predicateType")
    return Opened(attestation, kind if isinstance(kind, str) else "", statement, False)


def verify_attestation(
    attestation: Attestation, verifier: Verifier, predicate_type: str | None = None
) -> Opened:
    """Check the signature, the signed predicate type and the signed subject (module docstring)."""
    where = _where(attestation)
    if attestation.format is AttestationFormat.legacy_signature:
        if verifier.find_key(attestation.content, attestation.signature) is None:
            raise VerificationFailed(
                f"no signature verifies with the {len(verifier.keys)} trusted key(s)"
                " (wrong key, or the payload or signature was altered)",
                where=where,
            )
        payload = check_simple_signing(attestation.content, attestation.subject, where=where)
        return Opened(attestation, SIGNATURE_PREDICATE_TYPE, payload, True)
    from bastion.attest._bundle import verify_bundle

    statement = verify_bundle(attestation.content, verifier, where=where)
    if predicate_type is not None and statement.predicate_type != predicate_type:
        raise VerificationFailed(
            f"the signed statement is a {statement.predicate_type}, not a {predicate_type}"
            " (its annotation says otherwise)",
            where=where,
        )
    algorithm, _, hexdigest = attestation.subject.partition(":")
    named = [s.digest.get(algorithm) for s in statement.subject]
    if hexdigest not in named:
        listed = ", ".join(f"{algorithm}:{d}" for d in named if d) or "no sha256 digest"
        raise VerificationFailed(
            f"the signed statement is about {listed}, not {attestation.subject}"
            " (an attestation copied from another image)",
            where=where,
        )
    doc: dict[str, JsonValue] = statement.model_dump(mode="json", by_alias=True, exclude_none=True)
    return Opened(attestation, statement.predicate_type, doc, True)


def newest(attestations: Iterable[Attestation]) -> list[Attestation]:
    """Newest first: by ``created`` (RFC 3339 UTC strings sort as times), then the later found first."""
    indexed = list(enumerate(attestations))
    indexed.sort(key=lambda pair: (pair[1].created, pair[0]), reverse=True)
    return [att for _, att in indexed]


def select(
    attestations: Sequence[Attestation], predicate_type: str, verifier: Verifier | None, *, what: str
) -> Opened:
    """The newest attestation of ``predicate_type``; with a verifier, the newest one that verifies.

    Nothing of that type: InputError without a verifier, VerificationFailed with one (fail closed).
    None verifies: VerificationFailed naming each candidate and why it failed.
    """
    candidates = newest(a for a in attestations if a.predicate_type == predicate_type)
    if not candidates:
        message = f"no {predicate_alias(predicate_type)} attestation ({predicate_type}) is attached to {what}"
        if verifier is None:
            raise InputError(message)
        raise VerificationFailed(message)
    if verifier is None:
        return read_unverified(candidates[0])
    reasons: list[str] = []
    for candidate in candidates:
        try:
            return verify_attestation(candidate, verifier, predicate_type)
        except VerificationFailed as exc:
            reasons.append(exc.diagnostic())
    raise VerificationFailed(
        f"none of the {len(candidates)} {predicate_alias(predicate_type)} attestation(s) of {what} verifies: "
        + "; ".join(reasons)
    )


@dataclass(frozen=True)
class Check:
    """One required predicate type on one platform."""

    platform: str
    subject: str
    predicate_type: str
    found: int
    verified: Opened | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.verified is not None


@dataclass(frozen=True)
class ImageReport:
    reference: str
    digest: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "verified": self.ok,
            "checks": [
                {
                    "platform": c.platform,
                    "subject": c.subject,
                    "predicateType": c.predicate_type,
                    "found": c.found,
                    "verified": c.ok,
                    "attestation": c.verified.attestation.manifest if c.verified else None,
                    "reason": c.reason,
                }
                for c in self.checks
            ],
        }


def candidates_for(
    image: ImageSource, target: Target, predicate_type: str | None = None
) -> list[Attestation]:
    """What is attached to a platform manifest, and to the index the reference names (which covers it)."""
    found = image.attestations(target, predicate_type)
    index = image.index_target()
    if index is not None:
        found += image.attestations(index, predicate_type)
    return found


def verify_image(
    image: ImageSource, verifier: Verifier, required: Sequence[str], *, platform: str | None = None
) -> ImageReport:
    """Every type in ``required`` has a verified attestation on every platform (or the one asked for)."""
    checks: list[Check] = []
    for target in image.targets(platform):
        attached = candidates_for(image, target)
        for predicate_type in required:
            count = sum(1 for a in attached if a.predicate_type == predicate_type)
            try:
                opened = select(attached, predicate_type, verifier, what=target.platform or target.digest)
            except VerificationFailed as exc:
                checks.append(
                    Check(target.platform, target.digest, predicate_type, count, None, exc.diagnostic())
                )
            else:
                checks.append(Check(target.platform, target.digest, predicate_type, count, opened, ""))
    return ImageReport(image.reference, image.top.digest, tuple(checks))


def _json_object(data: bytes, where: str) -> dict[str, JsonValue]:
    try:
        doc = load_json(data, where=where)
    except InputError as error:
        raise InputError(f"the payload is not JSON: {error.message}", where=where) from None
    if not isinstance(doc, dict):
        raise InputError("the payload is not a JSON object", where=where)
    return doc


def _where(attestation: Attestation) -> str:
    return f"{attestation.source} {attestation.manifest}"
