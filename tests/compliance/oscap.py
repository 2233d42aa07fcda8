"""Validating XCCDF with the real OpenSCAP (Debian package openscap-scanner).

OpenSCAP 1.3.7 (bookworm) rejects a document its schematron has no warning at all about, so the
schema is checked by ``oscap xccdf validate --skip-schematron`` and the schematron OpenSCAP ships
(already compiled to XSLT) is run through lxml, failing on its errors only.

The shipped schematron's ``benchmark_rule_result_override`` rule has a context that is too wide: it
checks the result of *every* rule-result of a TestResult in which *any* rule-result has an override,
so a report with one waived rule gets an error for each rule that was not waived. XCCDF 1.2 section
6.6.4.3 (and the rule's own message: "... in an 'override' element when present") constrains only
rule-results that have an override, so the rule is run with that context.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

SCHEMATRON = Path("/usr/share/openscap/schemas/xccdf/1.2/xccdf_1.2-schematron.xsl")
_XSL = "{http://www.w3.org/1999/XSL/Transform}"
_OVERRIDE_CONTEXT_SHIPPED = (
    "xccdf:TestResult[xccdf:rule-result[xccdf:override]]/xccdf:rule-result/xccdf:result"
)
_OVERRIDE_CONTEXT_MEANT = "xccdf:TestResult/xccdf:rule-result[xccdf:override]/xccdf:result"


def require_oscap() -> str:
    oscap = shutil.which("oscap")
    if oscap is None or not SCHEMATRON.is_file():
        pytest.skip("OpenSCAP is not installed (apt-get install openscap-scanner)")
    return oscap


def schematron() -> etree.XSLT:
    """The shipped schematron, its override rule narrowed to what it means (see the module docs)."""
    stylesheet = etree.parse(str(SCHEMATRON))
    for template in stylesheet.iter(f"{_XSL}template"):
        if template.get("match") == _OVERRIDE_CONTEXT_SHIPPED:
            template.set("match", _OVERRIDE_CONTEXT_MEANT)
    return etree.XSLT(stylesheet)


def validate(path: Path) -> list[str]:
    """Problems OpenSCAP finds in the XCCDF document at ``path``: schema errors and schematron errors."""
    oscap = require_oscap()
    proc = subprocess.run(
        [oscap, "xccdf", "validate", "--skip-schematron", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [] if proc.returncode == 0 else [f"oscap exit {proc.returncode}: {proc.stdout}{proc.stderr}"]
    report = str(schematron()(etree.parse(str(path))))
    problems += [line for line in report.splitlines() if line.startswith("Error")]
    return problems
