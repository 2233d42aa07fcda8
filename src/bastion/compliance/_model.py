"""The compliance data model: rules, profiles, and the results of evaluating a profile on an image.

Result words are XCCDF 1.2's (NIST IR 7275r4, section 6.6.4.2, table 26); identifiers take the
``xccdf_<reverse-DNS>_<type>_<name>`` form the specification requires (section 6.2.3).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bastion.identifiers import LABEL_NAMESPACE

if TYPE_CHECKING:
    from bastion.compliance._rules._context import Context

#: The reverse-DNS namespace of every identifier Bastion writes (XCCDF 1.2 section 6.2.3).
NAMESPACE = LABEL_NAMESPACE
CIS_DOCKER = "CIS Docker Benchmark v1.6.0"
CIS_DOCKER_HREF = "https://www.cisecurity.org/benchmark/docker"
CCI_SYSTEM = "http://cyber.mil/cci"  # the ident system DISA's STIG benchmarks use for CCIs


def xccdf_id(kind: str, name: str) -> str:
    """``xccdf_dev.bastion_<kind>_<name>`` (XCCDF 1.2 section 6.2.3: ``xccdf_[^_]+_<kind>_.+``)."""
    return f"xccdf_{NAMESPACE}_{kind}_{name}"


class Result(enum.StrEnum):
    """XCCDF 1.2 rule result words (section 6.6.4.2). ``notselected`` is produced only for a waived
    rule: the waiver tailors the profile so that it does not select the rule (a rule a profile itself
    disables is left out of the results altogether)."""

    PASS = "pass"  # noqa: S105 - the XCCDF result word, not a password
    FAIL = "fail"
    ERROR = "error"
    UNKNOWN = "unknown"
    NOTAPPLICABLE = "notapplicable"
    NOTCHECKED = "notchecked"
    INFORMATIONAL = "informational"
    NOTSELECTED = "notselected"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Area(enum.StrEnum):
    """The groups rules are reported in (an XCCDF ``Group`` each)."""

    IMAGE = "image"
    ACCOUNTS = "accounts"
    FILES = "files"
    PACKAGES = "packages"
    SECRETS = "secrets"
    CRYPTO = "crypto"
    HOST = "host"

    @property
    def heading(self) -> str:
        return _AREA_TITLES[self]


_AREA_TITLES = {
    Area.IMAGE: "Image configuration",
    Area.ACCOUNTS: "Accounts",
    Area.FILES: "Files and permissions",
    Area.PACKAGES: "Packages and software",
    Area.SECRETS: "Secrets",
    Area.CRYPTO: "Cryptography",
    Area.HOST: "Host-level requirements (not applicable to a container image)",
}


@dataclass(frozen=True)
class Outcome:
    """What a check returns: the result word, a one-line message, and the evidence (paths, values)."""

    result: Result
    message: str
    evidence: tuple[str, ...] = ()


ParamValue = str | int | float | bool | tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """A rule of the catalogue: its description and the check that evaluates it.

    ``cis`` holds CIS Docker Benchmark v1.6.0 section numbers; ``cci`` DISA Control Correlation
    Identifiers, taken from the STIG requirement that checks the same property (cited in the rule's
    module). ``allow`` and ``params`` are the defaults a profile may override.
    """

    name: str
    area: Area
    title: str
    severity: Severity
    description: str
    rationale: str
    check: Callable[[Context, RuleConfig], Outcome]
    cis: tuple[str, ...] = ()
    cci: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return xccdf_id("rule", self.name)


@dataclass(frozen=True)
class RuleConfig:
    """A rule as a profile selects it: the effective severity, allowlist and parameters."""

    rule: Rule
    severity: Severity
    allow: tuple[str, ...]
    params: Mapping[str, ParamValue]

    def param(self, name: str) -> ParamValue:
        return self.params[name] if name in self.params else self.rule.params[name]

    def param_list(self, name: str) -> tuple[str, ...]:
        value = self.param(name)
        return value if isinstance(value, tuple) else (str(value),)

    def param_float(self, name: str) -> float:
        value = self.param(name)
        if isinstance(value, tuple):
            raise TypeError(f"parameter {name} of rule {self.rule.name} is a list, not a number")
        return float(value)


@dataclass(frozen=True)
class Profile:
    """A named, versioned selection of rules with per-rule overrides (XCCDF ``Profile``)."""

    name: str
    title: str
    version: str
    description: str
    rules: tuple[RuleConfig, ...]
    source: str  # the built-in name or the file it was read from

    @property
    def id(self) -> str:
        return xccdf_id("profile", self.name)


@dataclass(frozen=True)
class Override:
    """A waiver applied to a result: who waived the rule (``authority``) and why (``remark``), when, the
    check's own result (``old_result``) and the result reported (``new_result``: ``notselected``).

    It is written to XCCDF as tailoring, not as an XCCDF ``override`` (section 6.6.4.3): the
    TestResult names a Profile that deselects the waived rules, each ``select`` holding the waiver as
    its remark, and the rule-result keeps the check's result in its messages. OpenSCAP's default
    validation (1.3.7's schematron) rejects every TestResult holding an ``override``.
    """

    time: datetime
    authority: str
    old_result: Result
    new_result: Result
    remark: str


@dataclass(frozen=True)
class RuleResult:
    """One rule's result. With an :class:`Override` (a waiver), ``result`` is its ``new_result``;
    ``message`` and ``evidence`` are still the check's."""

    config: RuleConfig
    result: Result
    message: str
    evidence: tuple[str, ...]
    override: Override | None = None

    @property
    def rule(self) -> Rule:
        return self.config.rule

    @property
    def severity(self) -> Severity:
        return self.config.severity


@dataclass(frozen=True)
class TargetInfo:
    """What the reports say about the image evaluated (XCCDF ``target`` and ``target-facts``)."""

    name: str
    manifest_digest: str | None
    index_digest: str | None
    platform: str | None
    variant: str | None
    runtime: bool


@dataclass(frozen=True)
class ComplianceResult:
    profile: Profile
    target: TargetInfo
    results: tuple[RuleResult, ...]
    score: float  # urn:xccdf:scoring:default, 0-100
    time: datetime  # when the evaluation started: the TestResult's start-time (see :func:`compliance`)
    end_time: datetime | None = None  # when it ended (None: at ``time``)
    #: Where the waivers came from, as the reports say it ("the signed compliance attestation ...").
    waiver_source: str | None = None

    @property
    def ended(self) -> datetime:
        return self.end_time or self.time

    def count(self, result: Result) -> int:
        return sum(1 for r in self.results if r.result is result)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.result in (Result.FAIL, Result.ERROR))

    @property
    def waived(self) -> tuple[RuleResult, ...]:
        """The results an override changed (see :func:`bastion.compliance.apply_waivers`)."""
        return tuple(r for r in self.results if r.override is not None)

    @property
    def tailored_profile_id(self) -> str:
        """The Profile the TestResult names: the profile itself, or with waivers the profile that
        deselects the waived rules (a profile name never holds ``_``, so the id is free)."""
        if not self.waived:
            return self.profile.id
        return xccdf_id("profile", f"{self.profile.name}_waived")

    @property
    def test_result_id(self) -> str:
        return xccdf_id("testresult", self.profile.name)

    @property
    def benchmark_id(self) -> str:
        return xccdf_id("benchmark", "container")
