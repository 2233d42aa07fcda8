"""The XCCDF 1.2 report: one Benchmark holding the Profile, the Rules (grouped by area) and the
TestResult of the evaluation (NIST IR 7275 Rev. 4, sections 6.2-6.6).

Element order follows the XCCDF 1.2 schema (xccdf_1.2.xsd): in a Benchmark status, title,
description, version, model, Profile, Group, TestResult; in a Profile version, title, description,
select, refine-rule; in a Rule title, description, reference, rationale, ident; in a TestResult
title, profile, target, target-facts, rule-result, score; in a rule-result result, ident, message.

Waivers are tailoring (XCCDF 1.2 section 6.5, Profile): a second Profile selects what the profile
selects except the waived rules, each of whose ``select`` carries the waiver (authority and reason)
as its remark; the TestResult names that Profile, a waived rule's result is ``notselected`` and its
messages keep the check's own result and findings. No ``override`` is written: OpenSCAP 1.3.7's
schematron (pattern ``benchmark_rule_result_override``) checks every rule-result of a TestResult
holding one against an override it does not have, so ``oscap xccdf validate`` would reject the report.
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from bastion import __version__
from bastion.compliance._model import (
    CCI_SYSTEM,
    CIS_DOCKER,
    CIS_DOCKER_HREF,
    Area,
    ComplianceResult,
    Result,
    Rule,
    RuleResult,
    xccdf_id,
)

XCCDF_NS = "http://checklists.nist.gov/xccdf/1.2"
SCORING_DEFAULT = "urn:xccdf:scoring:default"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Target facts: the XCCDF names OpenSCAP uses for the scanner, and image facts in the same style.
FACT_PREFIX = "urn:xccdf:fact:"


# XML 1.0 section 2.2 "Char": what a document may hold. Paths and values from an image may be any
# bytes; anything else is written as a \\uNNNN escape so the report stays well-formed.
_NOT_XML_CHAR = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    return _NOT_XML_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _e(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    element = etree.SubElement(
        parent, f"{{{XCCDF_NS}}}{tag}", {k.replace("_", "-"): clean(v) for k, v in attributes.items()}
    )
    if text is not None:
        element.text = clean(text)
    return element


def _time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rule(parent: etree._Element, rule: Rule) -> None:
    element = _e(parent, "Rule", id=rule.id, selected="true", severity=rule.severity.value)
    _e(element, "title", rule.title)
    _e(element, "description", rule.description)
    for section in rule.cis:
        _e(element, "reference", f"{CIS_DOCKER}: {section}", href=CIS_DOCKER_HREF)
    _e(element, "rationale", rule.rationale)
    for cci in rule.cci:
        _e(element, "ident", cci, system=CCI_SYSTEM)


def _profile(root: etree._Element, result: ComplianceResult, *, tailored: bool) -> None:
    """The profile, or (``tailored``) the profile with the waived rules deselected, each waiver the
    remark of its ``select`` (XCCDF 1.2 section 6.5.3: ``select`` "remark")."""
    profile = result.profile
    waivers = {r.rule.id: r.override for r in result.waived} if tailored else {}
    element = _e(root, "Profile", id=result.tailored_profile_id if tailored else profile.id)
    _e(element, "version", profile.version)
    if tailored:
        _e(element, "title", f"{profile.title}, with waivers")
        source = f" ({result.waiver_source})" if result.waiver_source else ""
        _e(
            element,
            "description",
            f"Profile {profile.id} with the rules waived for this image deselected{source}; each "
            "deselected rule's remark names who waived it and why.",
        )
    else:
        _e(element, "title", profile.title)
        if profile.description:
            _e(element, "description", profile.description)
    for config in profile.rules:
        change = waivers.get(config.rule.id)
        select = _e(element, "select", idref=config.rule.id, selected="false" if change else "true")
        if change is not None:
            _e(select, "remark", f"waived by {change.authority}: {change.remark}")
    for config in profile.rules:
        if config.severity is not config.rule.severity:
            _e(element, "refine-rule", idref=config.rule.id, severity=config.severity.value)


def _rule_result(test: etree._Element, item: RuleResult, when: str) -> None:
    rule_result = _e(test, "rule-result", idref=item.rule.id, severity=item.severity.value, time=when)
    _e(rule_result, "result", item.result.value)
    for cci in item.rule.cci:
        _e(rule_result, "ident", cci, system=CCI_SYSTEM)
    change = item.override
    if change is None:
        _e(rule_result, "message", item.message, severity="info")
        level = "error" if item.result is Result.FAIL else "info"
    else:
        # The check's own outcome stays in the report; the waiver says why it is not selected.
        _e(
            rule_result,
            "message",
            f"the check's result: {change.old_result.value}: {item.message}",
            severity="info",
        )
        _e(rule_result, "message", f"waived by {change.authority}: {change.remark}", severity="info")
        level = "warning"
    for evidence in item.evidence:
        _e(rule_result, "message", evidence, severity=level)


def to_xccdf(result: ComplianceResult) -> bytes:
    """The XCCDF 1.2 document of ``result``: deterministic for the same result."""
    profile = result.profile
    when = _time(result.time)
    # Parsed rather than built so that XCCDF is the default namespace (no prefixes in the output).
    root = etree.fromstring(f'<Benchmark xmlns="{XCCDF_NS}"/>'.encode())
    for name, value in (("id", result.benchmark_id), ("resolved", "true"), (_XML_LANG, "en")):
        root.set(name, value)
    _e(root, "status", "accepted", date=result.time.strftime("%Y-%m-%d"))
    _e(root, "title", "Bastion container image compliance")
    _e(root, "description", "Requirements evaluated on a container image by Bastion.")
    _e(root, "version", __version__)
    _e(root, "model", system=SCORING_DEFAULT)

    _profile(root, result, tailored=False)
    if result.waived:
        _profile(root, result, tailored=True)

    for area in Area:
        rules = [c.rule for c in profile.rules if c.rule.area is area]
        if not rules:
            continue
        group = _e(root, "Group", id=xccdf_id("group", area.value))
        _e(group, "title", area.heading)
        for rule in rules:
            _rule(group, rule)

    test = _e(
        root,
        "TestResult",
        id=result.test_result_id,
        start_time=when,
        end_time=_time(result.ended),
        version=__version__,
    )
    _e(test, "benchmark", href="#" + result.benchmark_id, id=result.benchmark_id)
    _e(test, "title", f"{profile.title} {profile.version} on {result.target.name}")
    _e(test, "profile", idref=result.tailored_profile_id)
    _e(test, "target", result.target.name)
    facts = _e(test, "target-facts")
    fact_values: tuple[tuple[str, str | None], ...] = (
        ("scanner:name", "bastion"),
        ("scanner:version", __version__),
        ("image:name", result.target.name),
        ("image:digest", result.target.manifest_digest),
        ("image:index-digest", result.target.index_digest),
        ("image:platform", result.target.platform),
        ("image:variant", result.target.variant),
    )
    for fact, fact_value in fact_values:
        if fact_value:
            _e(facts, "fact", fact_value, name=FACT_PREFIX + fact, type="string")
    for item in result.results:
        _rule_result(test, item, when)
    _e(test, "score", f"{result.score:.2f}", system=SCORING_DEFAULT, maximum="100")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
