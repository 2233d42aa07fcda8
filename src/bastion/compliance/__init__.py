"""Compliance: STIG- and CIS-style rules evaluated on a container image, reported as XCCDF 1.2, HTML,
JSON and a summary.

    with open_target("bastion/python:3.11", settings) as target:
        result = compliance(target, "default")      # or load_profile(Path("mine.yaml"))
    print(summary(result).line())                   # counts per result word, score
    xccdf, page, data = to_xccdf(result), to_html(result), to_json(result)
    require_passed(result)                          # ComplianceFailed (exit code 1) on a fail

Rules are Python checks registered by name (``_rules/``); profiles are YAML data that select and
tailor them (``profiles/``, or a file of the user's: see :func:`load_profile`).

A build evaluates the profiles an image's definition claims with :func:`evaluate_claims`: waived
failures are deselected (``notselected``) by a tailored XCCDF profile recording each waiver, :attr:`ClaimResult.label` is the ``dev.bastion.compliance`` label and
:attr:`ClaimResult.predicate` the attestation predicate (:data:`COMPLIANCE_PREDICATE_TYPE`). A later
scan of the published image takes those waivers back from the verified attestation with
:func:`attested_waivers`.
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

# Loaded on first use (PEP 562, bastion._lazy): the XCCDF and HTML writers load lxml and the report
# templates, which evaluating rules, as every build does, needs neither of; the rules and profiles,
# which a build that reuses its images (and looks up the compliance proof producer) does not need.
if TYPE_CHECKING:
    from bastion.compliance._attested import AttestedWaiver, AttestedWaivers, attested_waivers
    from bastion.compliance._claims import (
        COMPLIANCE_LABEL,
        COMPLIANCE_PREDICATE_TYPE,
        ClaimResult,
        Failure,
        Waiver,
        apply_waivers,
        evaluate_claims,
    )
    from bastion.compliance._engine import ComplianceFailed, compliance, default_score, require_passed
    from bastion.compliance._html import to_html
    from bastion.compliance._model import (
        Area,
        ComplianceResult,
        Override,
        Profile,
        Result,
        Rule,
        RuleConfig,
        RuleResult,
        Severity,
        TargetInfo,
    )
    from bastion.compliance._profile import DEFAULT_PROFILE, builtin_profiles, load_profile
    from bastion.compliance._proofs import CLAIMS, COMPLIANCE_PRODUCER
    from bastion.compliance._report import Summary, summary, to_json
    from bastion.compliance._rules import RULES
    from bastion.compliance._xccdf import to_xccdf

__getattr__ = lazy_attributes(__name__)


__all__ = [
    "CLAIMS",
    "COMPLIANCE_LABEL",
    "COMPLIANCE_PREDICATE_TYPE",
    "COMPLIANCE_PRODUCER",
    "DEFAULT_PROFILE",
    "RULES",
    "Area",
    "AttestedWaiver",
    "AttestedWaivers",
    "ClaimResult",
    "ComplianceFailed",
    "ComplianceResult",
    "Failure",
    "Override",
    "Profile",
    "Result",
    "Rule",
    "RuleConfig",
    "RuleResult",
    "Severity",
    "Summary",
    "TargetInfo",
    "Waiver",
    "apply_waivers",
    "attested_waivers",
    "builtin_profiles",
    "compliance",
    "default_score",
    "evaluate_claims",
    "load_profile",
    "require_passed",
    "summary",
    "to_html",
    "to_json",
    "to_xccdf",
]
