"""``--format cyclonedx-vex``: a scan as a CycloneDX 1.6 VEX document (CycloneDX 1.6,
``vulnerabilities[]`` with ``affects`` and ``analysis``), built with cyclonedx-python-lib and checked
by its strict JSON-schema validator.

Analysis states: a finding with a fix available is ``exploitable`` with response ``update``; Debian
triaged states are ``exploitable``, with response ``will_not_fix`` for ``ignored`` and ``end-of-life``
and the state described in ``detail``; open ones are ``in_triage``; suppressed findings keep the
VEX decision that suppressed them (``not_affected`` with its justification, or ``resolved``).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from bastion._clock import now
from bastion.errors import InternalError
from bastion.identifiers import CYCLONEDX_VEX_SERIAL_BASE
from bastion.vuln import Finding, ScanResult, Severity, State

__all__ = ["to_cyclonedx_vex"]

_SEVERITY = {Severity.CRITICAL: "critical", Severity.HIGH: "high", Severity.MEDIUM: "medium",
             Severity.LOW: "low", Severity.NEGLIGIBLE: "info", Severity.UNKNOWN: "unknown"}  # fmt: skip
# OpenVEX justification -> CycloneDX impactAnalysisJustification
_JUSTIFICATION = {
    "component_not_present": "requires_dependency",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "requires_environment",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}


def to_cyclonedx_vex(result: ScanResult) -> bytes:
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.model.impact_analysis import (
        ImpactAnalysisJustification,
        ImpactAnalysisResponse,
        ImpactAnalysisState,
    )
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityAnalysis,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL

    findings: list[Finding] = [*result.findings, *result.suppressed]
    components: dict[str, Component] = {}
    for finding in findings:
        ref = PackageURL.from_string(finding.package.purl).to_string()
        components.setdefault(
            ref,
            Component(type=ComponentType.LIBRARY, bom_ref=ref, name=finding.package.name,
                      version=finding.package.version, purl=PackageURL.from_string(ref)),
        )  # fmt: skip
    vulnerabilities = []
    for index, finding in enumerate(findings):
        ref = PackageURL.from_string(finding.package.purl).to_string()
        responses: list[ImpactAnalysisResponse] = []
        justification = None
        detail = finding.state.describe
        if finding.suppression is not None:
            state = (
                ImpactAnalysisState.NOT_AFFECTED
                if finding.suppression.status == "not_affected"
                else ImpactAnalysisState.RESOLVED
            )
            mapped = _JUSTIFICATION.get(finding.suppression.justification or "")
            justification = ImpactAnalysisJustification(mapped) if mapped else None
            detail = finding.suppression.statement or f"VEX by {finding.suppression.author}"
        elif finding.state is State.FIXED:
            state = ImpactAnalysisState.EXPLOITABLE
            responses = [ImpactAnalysisResponse.UPDATE]
            detail = f"fixed in {finding.fixed_version}"
        elif finding.state in (State.IGNORED, State.END_OF_LIFE):
            state, responses = ImpactAnalysisState.EXPLOITABLE, [ImpactAnalysisResponse.WILL_NOT_FIX]
        elif finding.state in (State.NO_DSA, State.POSTPONED, State.UNIMPORTANT):
            state = ImpactAnalysisState.EXPLOITABLE
        else:
            state = ImpactAnalysisState.IN_TRIAGE
        ratings = [
            VulnerabilityRating(
                severity=VulnerabilitySeverity(_SEVERITY[finding.severity]),
                method=VulnerabilityScoreSource.OTHER,
                justification=f"severity from {finding.severity_source}",
            )
        ]
        for cvss in finding.cvss:
            if cvss.score is not None:
                method = (
                    VulnerabilityScoreSource.CVSS_V3_1
                    if cvss.vector.startswith("CVSS:3.1")
                    else VulnerabilityScoreSource.CVSS_V3
                )
                ratings.append(
                    VulnerabilityRating(score=Decimal(str(cvss.score)), method=method, vector=cvss.vector)
                )
        vulnerabilities.append(
            Vulnerability(
                bom_ref=f"{finding.id}#{index}",
                id=finding.id,
                source=VulnerabilitySource(name=",".join(finding.sources) or None),
                references=[VulnerabilityReference(id=alias, source=VulnerabilitySource(name="alias")) for alias in finding.aliases],
                ratings=ratings,
                description=finding.summary or None,
                analysis=VulnerabilityAnalysis(state=state, justification=justification, responses=responses or None, detail=detail),
                affects=[BomTarget(ref=ref)],
            )
        )  # fmt: skip
    root = Component(
        type=ComponentType.CONTAINER, name=result.name, version=result.manifest_digest,
        bom_ref=result.root_purl or f"bastion:image:{result.name}",
        purl=PackageURL.from_string(result.root_purl) if result.root_purl else None,
    )  # fmt: skip
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"{CYCLONEDX_VEX_SERIAL_BASE}{result.root_purl or result.name}/{len(findings)}",
    )
    bom = Bom(
        serial_number=serial,
        metadata=BomMetaData(component=root, timestamp=now()),
        components=list(components.values()),
        vulnerabilities=vulnerabilities,
        dependencies=[Dependency(root.bom_ref, [Dependency(c.bom_ref) for c in components.values()])],
    )
    document = JsonV1Dot6(bom).output_as_string(indent=2)
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document)
    if errors is not None:
        raise InternalError(f"CycloneDX VEX document is invalid against the 1.6 schema: {errors}")
    return document.encode() + b"\n"
