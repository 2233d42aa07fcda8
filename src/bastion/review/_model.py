"""The values a review is made of: rules, findings, the verdict and the score that led to it.

The score (docs/guardrail.md, "Verdict"): each finding contributes
``severity weight x confidence x contributor multiplier``; the review's score is the sum, and the
verdict is ``block`` at :data:`BLOCK_AT` or more, ``review`` at :data:`REVIEW_AT` or more, else ``pass``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def weight(self) -> float:
        return _SEVERITY_WEIGHT[self]


class Confidence(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def factor(self) -> float:
        return _CONFIDENCE_FACTOR[self]


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    REVIEW = "review"
    BLOCK = "block"


_SEVERITY_WEIGHT = {
    Severity.INFO: 0.0,
    Severity.LOW: 1.0,
    Severity.MEDIUM: 3.0,
    Severity.HIGH: 6.0,
    Severity.CRITICAL: 10.0,
}
_CONFIDENCE_FACTOR = {Confidence.LOW: 0.3, Confidence.MEDIUM: 0.6, Confidence.HIGH: 0.9}

#: A score at or above this waits for a reviewer.
REVIEW_AT = 2.0
#: A score at or above this is refused until a reviewer overrides it.
BLOCK_AT = 9.0
#: A first-time contributor's change to build, CI or release files multiplies the weight of the other
#: findings in the files they touched; on its own it contributes nothing.
NEW_CONTRIBUTOR_MULTIPLIER = 1.5

FAMILIES = (
    "error-handling",
    "control-flow",
    "checks",
    "resources",
    "integrity",
    "supply-chain",
    "contributors",
)


@dataclass(frozen=True)
class Rule:
    """One check the guardrail runs; ``version`` changes whenever what it reports changes."""

    id: str
    family: str
    severity: Severity
    confidence: Confidence
    why: str
    version: int = 1


@dataclass(frozen=True)
class Hit:
    """What a rule saw in one version of one file. ``key`` (rule, enclosing function, normalised text)
    is how a hit in the new version is matched with the same hit in the old one: never by line."""

    rule: Rule
    path: str
    line: int
    function: str
    text: str
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rule.id, self.path, self.function, " ".join(self.text.split()))


@dataclass(frozen=True)
class Finding:
    rule: Rule
    path: str
    line: int
    function: str
    text: str
    detail: str
    hunk: str
    multiplier: float = 1.0

    @property
    def contribution(self) -> float:
        return round(self.rule.severity.weight * self.rule.confidence.factor * self.multiplier, 2)

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule.id,
            "family": self.rule.family,
            "severity": self.rule.severity.value,
            "confidence": self.rule.confidence.value,
            "path": self.path,
            "line": self.line,
            "function": self.function or None,
            "text": self.text,
            "detail": self.detail or None,
            "why": self.rule.why,
            "multiplier": self.multiplier,
            "contribution": self.contribution,
            "hunk": self.hunk or None,
        }


@dataclass(frozen=True)
class Review:
    """The outcome of :func:`bastion.review.review_diff`."""

    old: str
    new: str
    files_changed: int
    lines_changed: int
    rules: tuple[Rule, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def score(self) -> float:
        return round(sum(f.contribution for f in self.findings), 2)

    @property
    def verdict(self) -> Verdict:
        if self.score >= BLOCK_AT:
            return Verdict.BLOCK
        if self.score >= REVIEW_AT:
            return Verdict.REVIEW
        return Verdict.PASS
