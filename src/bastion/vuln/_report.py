"""Scan results as JSON, SARIF 2.1.0, Markdown, and the rows of the table view (the terminal renderer
is the CLI's: ``bastion.cli._tables``).

JSON (``bastion-cves/v1``) holds everything: the image, the database sources and their import
times, every finding (with its Debian state, urgency, CVSS, KEV flag and aliases), the suppressed
findings with the VEX decision that suppressed them, and warnings.

SARIF 2.1.0 (OASIS, "Static Analysis Results Interchange Format Version 2.1.0"): one rule per
vulnerability (``properties.security-severity`` is the highest CVSS score, as code-scanning services
read it), one result per (vulnerability, package); suppressed findings are results carrying an
``external`` suppression (§3.35) with the VEX justification, never dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from typing import Any

import bastion
from bastion.identifiers import TOOL_URI
from bastion.vuln._model import Finding, ScanResult, Severity

__all__ = [
    "FINDING_COLUMNS",
    "SARIF_SCHEMA_URI",
    "finding_row",
    "render_markdown",
    "summary",
    "to_json",
    "to_sarif",
]

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning"}


def _finding(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["state_description"] = finding.state.describe
    data["max_cvss"] = finding.max_cvss
    return data


def summary(result: ScanResult) -> dict[str, Any]:
    return {
        "findings": len(result.findings),
        "suppressed": len(result.suppressed),
        "kev": sum(1 for f in result.findings if f.kev),
        "with_fix": sum(1 for f in result.findings if f.state.has_fix),
        "by_severity": dict(sorted(Counter(str(f.severity) for f in result.findings).items())),
        "by_state": dict(sorted(Counter(str(f.state) for f in result.findings).items())),
    }


def to_json(result: ScanResult) -> bytes:
    document = {
        "schema": "bastion-cves/v1",
        "image": {
            "name": result.name, "purl": result.root_purl, "digest": result.manifest_digest,
            "platform": result.platform, "distro": result.distro,
        },
        "database": result.database,
        "summary": summary(result),
        "findings": [_finding(f) for f in result.findings],
        "suppressed": [_finding(f) for f in result.suppressed],
        # Packages matched only by records that need no ordering (bastion.vuln._model.VersionProblem).
        "version_problems": [asdict(item) for item in result.version_problems],
        "warnings": result.warnings,
    }  # fmt: skip
    return json.dumps(document, indent=2, sort_keys=False).encode() + b"\n"


def _message(finding: Finding) -> str:
    text = f"{finding.id} in {finding.package.name} {finding.package.version}: {finding.state.describe}"
    if finding.fixed_version:
        text += f", fixed in {finding.fixed_version}"
    if finding.urgency:
        text += f" (Debian urgency: {finding.urgency})"
    if finding.kev:
        text += " [known exploited]"
    return text


def to_sarif(result: ScanResult) -> bytes:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in [*result.findings, *result.suppressed]:
        if finding.id not in rules:
            properties: dict[str, Any] = {"tags": ["security", "vulnerability"]}
            if finding.max_cvss is not None:
                properties["security-severity"] = f"{finding.max_cvss:.1f}"
            rules[finding.id] = {
                "id": finding.id,
                "name": finding.id.replace("-", ""),
                "shortDescription": {"text": finding.summary or finding.id},
                "properties": properties,
            }
        item: dict[str, Any] = {
            "ruleId": finding.id,
            "ruleIndex": list(rules).index(finding.id),
            "level": _LEVEL.get(finding.severity, "note"),
            "message": {"text": _message(finding)},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": finding.package.purl}},
                    "logicalLocations": [
                        {
                            "name": finding.package.name,
                            "fullyQualifiedName": finding.package.purl,
                            "kind": "package",
                        }
                    ],
                }
            ],
            "partialFingerprints": {"vulnerability/package": f"{finding.id}/{finding.package.purl}"},
            "properties": {
                "state": str(finding.state),
                "severity": str(finding.severity),
                "fixedVersion": finding.fixed_version,
                "kev": finding.kev,
                "aliases": list(finding.aliases),
            },
        }
        if finding.suppression is not None:
            item["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f"VEX {finding.suppression.status}"
                    + (f" ({finding.suppression.justification})" if finding.suppression.justification else "")
                    + f" by {finding.suppression.author}",
                }
            ]
        results.append(item)
    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bastion",
                        "version": bastion.__version__,
                        "informationUri": TOOL_URI,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
                "properties": {"image": result.name, "digest": result.manifest_digest},
            }
        ],
    }
    return json.dumps(log, indent=2).encode() + b"\n"


def finding_row(finding: Finding) -> list[str]:
    """The cells of one finding in the table views (:data:`FINDING_COLUMNS`)."""
    cvss = f"{finding.max_cvss:.1f}" if finding.max_cvss is not None else ""
    state = str(finding.state) + (f" (VEX {finding.vex_status})" if finding.vex_status else "")
    if finding.suppression is not None:
        state = f"suppressed: {finding.suppression.status}"
    return [
        finding.id + (" [KEV]" if finding.kev else ""),
        finding.package.name,
        finding.package.version,
        state,
        finding.fixed_version or "",
        str(finding.severity)
        + (f" ({finding.urgency})" if finding.urgency and finding.urgency != str(finding.severity) else ""),
        cvss,
    ]


FINDING_COLUMNS = ("vulnerability", "package", "version", "state", "fixed in", "severity", "CVSS")


def render_markdown(result: ScanResult, *, show_suppressed: bool = False) -> str:
    def table(findings: list[Finding]) -> list[str]:
        lines = ["| " + " | ".join(FINDING_COLUMNS) + " |", "|" + "---|" * len(FINDING_COLUMNS)]
        lines += [
            "| " + " | ".join(cell.replace("|", "\\|") for cell in finding_row(f)) + " |" for f in findings
        ]
        return lines

    counts = summary(result)
    lines = [f"# Vulnerabilities in {result.name}", "",
             f"{counts['findings']} findings ({counts['with_fix']} with a fix, {counts['kev']} known exploited), "
             f"{counts['suppressed']} suppressed by VEX.", ""]  # fmt: skip
    lines += table(result.findings)
    if show_suppressed and result.suppressed:
        lines += ["", "## Suppressed by VEX", "", *table(result.suppressed)]
    return "\n".join(lines) + "\n"
