"""The waivers an image's signed compliance attestation records, for ``bastion compliance`` on a
published image: the build evaluated the image with its definition's waivers and signed the result
(``docs/compliance.md``, "The compliance attestation"), so a later scan shows those waivers as waived,
with their reason and author, instead of as failures.

Only a verified attestation counts (:mod:`bastion.attest`: signature by a trusted key, signed predicate
type, signed subject equal to the image scanned); an unverified one's waivers are never applied, and
:attr:`AttestedWaivers.notes` says why. The predicate is signed but still read as input from outside:
its shape and sizes are checked before anything in it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.compliance._claims import COMPLIANCE_PREDICATE_TYPE
from bastion.compliance._model import Profile
from bastion.compliance._rules import RULES
from bastion.config import Settings
from bastion.errors import InputError, VerificationFailed
from bastion.oci import SCHEMES, ImageRef, parse_image_ref

__all__ = ["AttestedWaiver", "AttestedWaivers", "attested_waivers"]

# Bounds on the predicate's parts: a profile has fewer than a hundred rules; reasons are sentences.
_MAX_PROFILES = 64
_MAX_WAIVERS = 1024
_MAX_TEXT = 16 * 1024


class _Waiver(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    rule: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=_MAX_TEXT)
    authority: str = Field(min_length=1, max_length=_MAX_TEXT)


class _Profile(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str = Field(max_length=256)
    version: str = Field(max_length=256)
    waivers: list[_Waiver] = Field(default_factory=list, max_length=_MAX_WAIVERS)


class _Predicate(BaseModel):
    """The fields of the compliance predicate (``docs/compliance.md``) a scan uses."""

    model_config = ConfigDict(extra="ignore", strict=True)

    profiles: list[_Profile] = Field(max_length=_MAX_PROFILES)


@dataclass(frozen=True)
class AttestedWaiver:
    """One waiver as the attestation records it (a :class:`~bastion.compliance.Waiver`, with its author)."""

    rule: str
    reason: str
    authority: str
    profile: str | None = None


@dataclass(frozen=True)
class AttestedWaivers:
    """What a scan takes from the image's compliance attestation."""

    waivers: tuple[AttestedWaiver, ...] = ()
    source: str | None = None  # "the signed compliance attestation sha256:... (...)" when applied
    notes: tuple[str, ...] = ()  # why nothing (or not everything) was applied


def attested_waivers(
    reference: str | ImageRef,
    settings: Settings,
    *,
    manifest_digest: str | None,
    profile: Profile,
    keys: Sequence[Path],
) -> AttestedWaivers:
    """The waivers for ``profile`` that the newest verified compliance attestation attached to the
    platform image ``manifest_digest`` of ``reference`` records, verified with any of ``keys``."""
    ref = parse_image_ref(reference)
    if manifest_digest is None or not SCHEMES[ref.scheme].attestations:
        return AttestedWaivers()
    from bastion.attest import Verifier, open_image, select

    with open_image(ref, settings) as source:
        target = next((t for t in source.targets() if t.digest == manifest_digest), None)
        found = source.attestations(target, COMPLIANCE_PREDICATE_TYPE) if target is not None else []
    if not found:
        return AttestedWaivers()
    unverified = f"{len(found)} compliance attestation(s) of {manifest_digest}"
    if not keys:
        return AttestedWaivers(
            notes=(
                f"{unverified} not verified: no public key (no {settings.home / 'keys' / 'bastion.pub'}, "
                "no --key); their waivers are not applied",
            )
        )
    try:
        opened = select(found, COMPLIANCE_PREDICATE_TYPE, Verifier.from_files(keys), what=manifest_digest)
    except VerificationFailed as exc:
        return AttestedWaivers(notes=(f"{exc.diagnostic()}; their waivers are not applied",))
    where = f"compliance attestation {opened.attestation.manifest}"
    try:
        predicate = _Predicate.model_validate(opened.predicate)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "predicate"
        raise InputError(f"predicate.{field}: {first['msg']}", where=where) from None
    entry = next(
        (p for p in predicate.profiles if (p.name, p.version) == (profile.name, profile.version)), None
    )
    if entry is None:
        covered = ", ".join(f"{p.name} {p.version}" for p in predicate.profiles) or "no profile"
        return AttestedWaivers(
            notes=(
                f"the signed {where} covers {covered}, not {profile.name} {profile.version}: "
                "its waivers are not applied",
            )
        )
    known = [w for w in entry.waivers if w.rule in RULES and w.reason.strip()]
    notes = tuple(
        f"the signed {where} waives {w.rule!r}, which is not a rule of this Bastion: not applied"
        for w in entry.waivers
        if w.rule not in RULES
    )
    return AttestedWaivers(
        waivers=tuple(AttestedWaiver(w.rule, w.reason.strip(), w.authority) for w in known),
        source=f"waivers from the signed {where}",
        notes=notes,
    )
