"""Validating XCCDF with the real OpenSCAP (Debian package openscap-scanner).

OpenSCAP 1.3.7 (bookworm) rejects a document its schematron has no warning at all about, so the
schema is checked by ``oscap xccdf validate --skip-schematron`` and the schematron OpenSCAP ships
(already compiled to XSLT) is run through lxml, failing on its errors only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

SCHEMATRON = Path("/usr/share/openscap/schemas/xccdf/1.2/xccdf_1.2-schematron.xsl")


def require_oscap() -> str:
    oscap = shutil.which("oscap")
    if oscap is None or not SCHEMATRON.is_file():
        pytest.skip("OpenSCAP is not installed (apt-get install openscap-scanner)")
    return oscap


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
    report = str(etree.XSLT(etree.parse(str(SCHEMATRON)))(etree.parse(str(path))))
    problems += [line for line in report.splitlines() if line.startswith("Error")]
    return problems
