"""The XCCDF 1.2 report: one Benchmark holding the Profile, the Rules (grouped by area) and the
TestResult of the evaluation (NIST IR 7275 Rev. 4, sections 6.2-6.6).

Element order follows the XCCDF 1.2 schema (xccdf_1.2.xsd): in a Benchmark status, title,
description, version, model, Profile, Group, TestResult; in a Rule title, description, reference,
rationale, ident; in a TestResult title, profile, target, target-facts, rule-result, score; in a rule-result result,
override, ident, message.
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
    Rule,
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

    element = _e(root, "Profile", id=profile.id)
    _e(element, "version", profile.version)
    _e(element, "title", profile.title)
    if profile.description:
        _e(element, "description", profile.description)
    for config in profile.rules:
        _e(element, "select", idref=config.rule.id, selected="true")
    for config in profile.rules:
        if config.severity is not config.rule.severity:
            _e(element, "refine-rule", idref=config.rule.id, severity=config.severity.value)

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
    _e(test, "profile", idref=profile.id)
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
        rule_result = _e(test, "rule-result", idref=item.rule.id, severity=item.severity.value, time=when)
        _e(rule_result, "result", item.result.value)
        if item.override is not None:
            # XCCDF 1.2 section 6.6.4.3: every attribute and child of an override is required, and
            # the enclosing result must equal its new-result (the schematron checks both).
            change = item.override
            element = _e(rule_result, "override", time=_time(change.time), authority=change.authority)
            _e(element, "old-result", change.old_result.value)
            _e(element, "new-result", change.new_result.value)
            _e(element, "remark", change.remark)
        for cci in item.rule.cci:
            _e(rule_result, "ident", cci, system=CCI_SYSTEM)
        _e(rule_result, "message", item.message, severity="info")
        # A waived failure's evidence is still shown, as a warning.
        level = "info" if item.result.value != "fail" else "error"
        if item.override is not None and item.override.old_result.value == "fail":
            level = "warning"
        for evidence in item.evidence:
            _e(rule_result, "message", evidence, severity=level)
    _e(test, "score", f"{result.score:.2f}", system=SCORING_DEFAULT, maximum="100")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
