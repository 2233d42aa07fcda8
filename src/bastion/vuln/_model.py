"""Findings: what a scan says about one package and one vulnerability (all its aliases merged).

Debian tracker states are kept as the tracker has them, never flattened into "won't fix"
(Debian security tracker, "data/json": ``status``, ``fixed_version``, ``urgency``, ``nodsa``,
``nodsa_reason``):

=================  ===========================================================================
state              meaning
=================  ===========================================================================
``fixed``          a fixed version exists (``fixed_version``) and the image has an older one
``open``           affected, no fix yet
``no-dsa``         affected; Debian will not issue an advisory ("minor issue"), a point release may fix it
``postponed``      affected; the fix is postponed to a later update
``ignored``        affected; Debian decided not to fix it in this release
``end-of-life``    affected; the package is no longer supported by Debian security in this release
``unimportant``    affected in Debian's terms, with urgency ``unimportant`` (no security impact expected)
``undetermined``   the tracker has not determined whether the release is affected
``affected``       a language-ecosystem package in an OSV range with no fixed version
=================  ===========================================================================

``fixed_version "0"`` means the release was never affected: there is no finding at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "Cvss",
    "Finding",
    "PackageRef",
    "ScanResult",
    "Severity",
    "State",
    "Suppression",
    "VersionProblem",
]


class State(enum.StrEnum):
    FIXED = "fixed"
    OPEN = "open"
    NO_DSA = "no-dsa"
    POSTPONED = "postponed"
    IGNORED = "ignored"
    END_OF_LIFE = "end-of-life"
    UNIMPORTANT = "unimportant"
    UNDETERMINED = "undetermined"
    AFFECTED = "affected"

    @property
    def has_fix(self) -> bool:
        return self is State.FIXED

    @property
    def describe(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    State.FIXED: "fixed in a newer version",
    State.OPEN: "affected, no fix yet",
    State.NO_DSA: "affected, minor issue (no DSA)",
    State.POSTPONED: "affected, fix postponed",
    State.IGNORED: "affected, ignored by Debian for this release",
    State.END_OF_LIFE: "affected, package end-of-life in this release",
    State.UNIMPORTANT: "affected, unimportant (Debian urgency)",
    State.UNDETERMINED: "not yet determined",
    State.AFFECTED: "affected, no fixed version known",
}


class Severity(enum.StrEnum):
    """Ordered from the worst. ``negligible`` is Debian's ``unimportant``."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NEGLIGIBLE = "negligible"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity)}


@dataclass(frozen=True)
class Cvss:
    vector: str
    score: float | None  # computed for CVSS v3 vectors; None for v2/v4


@dataclass(frozen=True)
class PackageRef:
    """The package a finding is about, as the SBOM names it."""

    type: str  # purl type: deb, pypi, npm, golang, maven
    name: str
    version: str
    purl: str
    ecosystem: str  # OSV ecosystem it was matched in: Debian:12, PyPI, ...
    key: str  # the name matched: the Debian *source* package, the PEP 503 name, the Go module path
    matched_version: str  # the version compared: the source version for Debian packages


@dataclass(frozen=True)
class VersionProblem:
    """A package whose version its ecosystem's rules cannot order, or that has none. Only records that
    decide without ordering are matched to it: those that affect every version (the tracker's open
    states, an OSV range introduced at 0 and never fixed) and OSV's exact ``versions``; the others are
    counted as ``undecided``, never guessed either way."""

    package: PackageRef
    problem: str  # "no version", or why the version does not parse
    undecided: int  # records naming the package that only ordering could decide


@dataclass(frozen=True)
class Suppression:
    """Why a VEX statement moved a finding out of the active list."""

    status: str  # not_affected | fixed
    justification: str | None
    statement: str  # impact or status notes, if any
    author: str
    document: str  # the VEX document's @id or file
    timestamp: str


@dataclass(frozen=True)
class Finding:
    id: str  # the preferred name: the CVE when one is known, else the first advisory id
    aliases: tuple[str, ...]  # every other id merged into this finding (GHSA, PYSEC, DSA, ...)
    package: PackageRef
    state: State
    fixed_version: str | None
    severity: Severity
    severity_source: str  # "debian" (tracker urgency), "cvss", "advisory" or "none"
    urgency: str | None  # Debian urgency as the tracker writes it
    cvss: tuple[Cvss, ...] = ()
    kev: bool = False
    summary: str = ""
    sources: tuple[str, ...] = ()  # database sources the records came from
    note: str | None = None  # no-dsa reason text, VEX action statement, ...
    vex_status: str | None = None  # affected / under_investigation from a VEX statement kept active
    suppression: Suppression | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    @property
    def max_cvss(self) -> float | None:
        scores = [item.score for item in self.cvss if item.score is not None]
        return max(scores) if scores else None


@dataclass(frozen=True)
class FixedMatch:
    """A vulnerability a record names for this package that the shipped version already fixes
    (kept for VEX ``fixed`` statements, never shown as a finding)."""

    id: str
    aliases: tuple[str, ...]
    package: PackageRef
    fixed_version: str | None


@dataclass
class ScanResult:
    """Everything one scan found for one image (or SBOM)."""

    name: str  # image reference or SBOM file
    root_purl: str | None
    manifest_digest: str | None
    platform: str | None
    distro: str | None
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    fixed: list[FixedMatch] = field(default_factory=list)
    packages: list[PackageRef] = field(default_factory=list)
    version_problems: list[VersionProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    database: dict[str, str] = field(default_factory=dict)  # source -> imported-at (RFC 3339)
    index_digest: str | None = None  # the index the platform manifest was chosen from (VEX may name it)
