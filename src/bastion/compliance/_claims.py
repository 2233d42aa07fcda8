"""What an image claims: the profiles its definition names, evaluated at build time, with the failures
it waives deselected by a tailored XCCDF profile that records each waiver, the label that names the profiles it passed, and the
compliance attestation predicate (documented in ``docs/compliance.md``).

    claims = evaluate_claims(target, variant.claimed_profiles, variant.compliance.waivers,
                             time="2025-01-02T03:04:05Z", base_dir=definition.path.parent)
    claims.require_passed()                        # ComplianceFailed naming every unwaived failure
    labels[COMPLIANCE_LABEL] = claims.label        # "bastion-container-baseline@1.0.0"
    statement = make_statement(subjects, COMPLIANCE_PREDICATE_TYPE, claims.predicate)
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import JsonValue

from bastion import __version__
from bastion.attest import COMPLIANCE_PREDICATE_TYPE
from bastion.compliance._engine import ComplianceFailed, compliance, default_score
from bastion.compliance._model import ComplianceResult, Override, Result, RuleResult
from bastion.compliance._profile import builtin_name, load_profile
from bastion.compliance._report import summary
from bastion.compliance._rules import RULES
from bastion.compliance._rules._context import COMPLIANCE_LABEL
from bastion.errors import InputError
from bastion.image import ImageTarget

__all__ = [
    "COMPLIANCE_LABEL",
    "COMPLIANCE_PREDICATE_TYPE",
    "DEFAULT_AUTHORITY",
    "ClaimResult",
    "Failure",
    "Waiver",
    "apply_waivers",
    "evaluate_claims",
]

#: The waiver's ``authority`` when the caller names none: who authorised it (the words of XCCDF 1.2
#: section 6.6.4.3 for an override's authority, which a waiver is recorded in place of).
DEFAULT_AUTHORITY = "image definition (compliance.waivers)"
#: The score's maximum under ``urn:xccdf:scoring:default`` (XCCDF 1.2 section 7.3.2.1).
MAX_SCORE = 100.0


class Waiver(Protocol):
    """A waived rule, as a definition's ``compliance.waivers`` holds it (``bastion.catalog.Waiver``)."""

    @property
    def rule(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def profile(self) -> str | None: ...


@dataclass(frozen=True)
class Failure:
    """A rule of a claimed profile that failed (or could not be evaluated) and was not waived."""

    profile: str  # ``name version``
    rule: str
    severity: str
    result: str  # ``fail`` or ``error``
    message: str
    evidence: str | None  # the first item of evidence, if any

    def line(self) -> str:
        text = f"{self.rule} ({self.severity}): {self.message}"
        return text + (f" [{self.evidence}]" if self.evidence else "")


@dataclass(frozen=True)
class ClaimResult:
    """The evaluation of every profile an image claims, waivers applied."""

    results: tuple[ComplianceResult, ...]
    unused_waivers: tuple[str, ...]  # waivers that changed no result (``rule`` or ``rule@profile``)

    @property
    def passed(self) -> bool:
        """True when no claimed profile has a failure (or an error) that no waiver covers."""
        return not self.failures

    @property
    def failures(self) -> tuple[Failure, ...]:
        return tuple(
            Failure(
                profile=f"{result.profile.name} {result.profile.version}",
                rule=item.rule.name,
                severity=item.severity.value,
                result=item.result.value,
                message=item.message,
                evidence=item.evidence[0] if item.evidence else None,
            )
            for result in self.results
            for item in result.failed
        )

    @property
    def label(self) -> str:
        """The value of the image label ``dev.bastion.compliance``: ``name@version`` of each claimed
        profile that passed, comma-separated (empty when none did)."""
        return ",".join(f"{r.profile.name}@{r.profile.version}" for r in self.results if not r.failed)

    def require_passed(self) -> None:
        """Raise :class:`ComplianceFailed` naming every unwaived failure."""
        failures = self.failures
        if not failures:
            return
        lines = "; ".join(f"{f.profile}: {f.line()}" for f in failures)
        raise ComplianceFailed(
            f"{len(failures)} rule(s) of the claimed compliance profiles failed: {lines}",
            hint="fix the image, or waive the rule under compliance.waivers with a reason",
        )

    @property
    def predicate(self) -> dict[str, JsonValue]:
        """The compliance attestation predicate (``COMPLIANCE_PREDICATE_TYPE``; ``docs/compliance.md``)."""
        profiles: list[JsonValue] = [_profile_entry(result) for result in self.results]
        image: dict[str, JsonValue] = {}
        if self.results:
            target = self.results[0].target
            facts: tuple[tuple[str, str | None], ...] = (
                ("name", target.name),
                ("digest", target.manifest_digest),
                ("platform", target.platform),
                ("variant", target.variant),
            )
            image = {key: value for key, value in facts if value is not None}
            image["runtime"] = target.runtime
        return {
            "profiles": profiles,
            "scanner": {"name": "bastion", "version": __version__},
            "image": image,
        }


def _profile_entry(result: ComplianceResult) -> JsonValue:
    # The reports load lxml and the HTML templates: only when a predicate is made (a signed build).
    from bastion.compliance._html import to_html
    from bastion.compliance._xccdf import to_xccdf

    info = summary(result)
    waivers: list[JsonValue] = []
    for item in result.waived:
        assert item.override is not None  # what ``waived`` selects
        waivers.append(
            {
                "rule": item.rule.name,
                "severity": item.severity.value,
                "reason": item.override.remark,
                "authority": item.override.authority,
                "oldResult": item.override.old_result.value,
                "newResult": item.override.new_result.value,
            }
        )
    counts: dict[str, JsonValue] = {word: n for word, n in info.counts.items()}
    return {
        "name": result.profile.name,
        "version": result.profile.version,
        "title": result.profile.title,
        "passed": info.passed,
        "time": result.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "summary": counts,
        "score": result.score,
        "maxScore": MAX_SCORE,
        "waivers": waivers,
        "outputs": {
            "xccdf": base64.b64encode(to_xccdf(result)).decode("ascii"),
            "html": base64.b64encode(to_html(result)).decode("ascii"),
        },
    }


def parse_time(value: str | datetime) -> datetime:
    """An RFC 3339 date-time (``2025-01-02T03:04:05Z``; nanoseconds allowed) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    # RFC 3339 allows nanoseconds (Docker writes them); datetime keeps microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{value!r} is not an RFC 3339 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_rules(waivers: Sequence[Waiver]) -> None:
    for index, waiver in enumerate(waivers):
        if waiver.rule not in RULES:
            close = difflib.get_close_matches(waiver.rule, list(RULES), n=3)
            raise InputError(
                f"compliance.waivers[{index}].rule: no rule {waiver.rule!r}",
                hint=f"did you mean {', '.join(close)}?" if close else "bastion compliance lists the rules",
            )
        if not waiver.reason.strip():
            raise InputError(f"compliance.waivers[{index}].reason: a waiver needs a reason")


def _key(waiver: Waiver) -> str:
    return waiver.rule if waiver.profile is None else f"{waiver.rule}@{waiver.profile}"


def apply_waivers(
    result: ComplianceResult,
    waivers: Sequence[Waiver],
    *,
    spec: str | None = None,
    authority: str = DEFAULT_AUTHORITY,
    time: str | datetime | None = None,
) -> tuple[ComplianceResult, frozenset[str]]:
    """``result`` with each failed rule a waiver covers deselected by the waiver (result
    ``notselected``, the check's ``fail`` kept as the old result, the reason as the remark: written
    to XCCDF as a tailored profile, see :class:`~bastion.compliance.Override`), the score recomputed
    (XCCDF 1.2 section 7.3.2.1 leaves unselected rules out); and the keys of the waivers that changed
    something.

    ``authority`` is who waived the rules, unless a waiver names its own (an ``authority`` attribute).
    A waiver without a ``profile`` covers every profile; one with a ``profile`` covers this one when
    it names it as the definition does (``spec``), by its name, or by its file. A result of ``error``
    is never waived: the check could not run, so nothing is known to accept.
    """
    _check_rules(waivers)
    names = {result.profile.name, result.profile.source}
    if spec is not None:
        names |= {spec, builtin_name(spec)}
    when = parse_time(time) if time is not None else result.time
    used: set[str] = set()
    changed: list[RuleResult] = []
    for item in result.results:
        waiver = next(
            (
                w
                for w in waivers
                if w.rule == item.rule.name and (w.profile is None or builtin_name(w.profile) in names)
            ),
            None,
        )
        if waiver is None or item.result is not Result.FAIL or item.override is not None:
            changed.append(item)
            continue
        used.add(_key(waiver))
        # A waiver that names its own author (one read from a signed attestation) keeps it.
        who = getattr(waiver, "authority", None) or authority
        override = Override(when.astimezone(UTC), who, item.result, Result.NOTSELECTED, waiver.reason.strip())
        changed.append(dataclasses.replace(item, result=Result.NOTSELECTED, override=override))
    results = tuple(changed)
    return dataclasses.replace(result, results=results, score=default_score(results)), frozenset(used)


def evaluate_claims(
    target: ImageTarget,
    profiles: Sequence[str],
    waivers: Sequence[Waiver],
    *,
    time: str | datetime,
    base_dir: Path | None = None,
    authority: str = DEFAULT_AUTHORITY,
) -> ClaimResult:
    """Evaluate each claimed profile (built-in names, or files read from ``base_dir``) on ``target``
    with ``waivers`` applied, at ``time`` (RFC 3339: the image's creation time, so the reports are
    reproducible).

    ``target`` may be an assembled tree before any layer is written (``layers`` empty,
    ``manifest_digest`` ``None``): the rules read files, owners, modes and the config only. The
    ``dev.bastion.compliance`` label in its config is never seen by a rule (it records this result).
    Raises :class:`~bastion.errors.InputError` for an unknown profile or a waiver of an unknown rule.
    """
    _check_rules(waivers)
    when = parse_time(time)
    results = []
    used: set[str] = set()
    for spec in profiles:
        profile = load_profile(spec, base_dir=base_dir)
        evaluated = compliance(target, profile, time=when)
        waived, keys = apply_waivers(evaluated, waivers, spec=spec, authority=authority, time=when)
        results.append(waived)
        used |= keys
    unused = tuple(_key(w) for w in waivers if _key(w) not in used)
    return ClaimResult(tuple(results), unused)
