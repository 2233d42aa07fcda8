"""Validating XCCDF with the real OpenSCAP (Debian package openscap-scanner), as users run it:
``oscap xccdf validate FILE`` (the XML schema and OpenSCAP's schematron, nothing skipped or narrowed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def require_oscap() -> str:
    oscap = shutil.which("oscap")
    if oscap is None:
        pytest.skip("OpenSCAP is not installed (apt-get install openscap-scanner)")
    return oscap


def validate(path: Path) -> list[str]:
    """What ``oscap xccdf validate`` rejects in the XCCDF document at ``path``: its errors (warnings,
    which do not change its exit status, are left out), or its exit status when it names none."""
    oscap = require_oscap()
    proc = subprocess.run(
        [oscap, "xccdf", "validate", str(path)], capture_output=True, text=True, check=False, timeout=300
    )
    lines = (proc.stdout + proc.stderr).splitlines()
    # Schematron errors start "Error:", schema errors "File 'NAME' line N:", and the verdict "OpenSCAP Error".
    errors = [line for line in lines if line.startswith(("Error", "File '", "OpenSCAP Error"))]
    if proc.returncode != 0 and not errors:
        errors = [f"oscap exit {proc.returncode}: {proc.stdout}{proc.stderr}"]
    return errors
