"""Shared helpers of the vulnerability tests: the real data in tests/data, tracker-shaped feeds,
SBOMs, and the CLI with the vulnerability commands registered."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bastion.sbom import Package, PackageType, Sbom
from tests.conftest import REPO_ROOT, TEST_DATA, CliResult

PYPI = TEST_DATA / "osv-pypi" / "vulns"
KEV = TEST_DATA / "kev" / "known_exploited_vulnerabilities.json"
TRACKER = TEST_DATA / "debian-tracker" / "tracker-json-sample.json"
NODE_VEX = TEST_DATA / "openvex" / "node.openvex.json"
OPENVEX_SCHEMA = TEST_DATA / "schemas" / "openvex_json_schema.json"


# Registers the commands when cli/_app.py does not yet (the lead adds `_vuln.register(app)` there).
_RUNNER = """
import sys
from bastion.cli import _app, _vuln
if not any(c.name == "cves" for c in _app.app.registered_commands):
    _vuln.register(_app.app)
from bastion.cli import main
main(sys.argv[1:])
"""


def run_vuln(*args: str, home: Path, env: dict[str, str] | None = None) -> CliResult:
    import os
    import subprocess

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    full_env.update({"BASTION_HOME": str(home), "COLUMNS": "200", **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args], capture_output=True, text=True, env=full_env,
        cwd=REPO_ROOT, timeout=600, check=False,
    )  # fmt: skip
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def tracker_release(status: str, **fields: Any) -> dict[str, Any]:
    """One release object shaped as the tracker's data/json writes it (see the sample)."""
    return {"status": status, "repositories": {"bookworm": fields.pop("shipped", "1.0-1")}, **fields}


def write_tracker(path: Path, entries: dict[str, dict[str, dict[str, Any]]]) -> Path:
    """``{package: {cve: bookworm release}}`` as a tracker feed."""
    feed = {
        package: {cve: {"description": f"{cve} test", "scope": "local", "releases": {"bookworm": release}}
                  for cve, release in cves.items()}
        for package, cves in entries.items()
    }  # fmt: skip
    path.write_text(json.dumps(feed))
    return path


def deb(name: str, version: str, source: str | None = None, source_version: str | None = None) -> Package:
    upstream = ""
    if source and source != name:
        upstream = f"&upstream={source}" + (f"%40{source_version}" if source_version else "")
    return Package(
        PackageType.DEB, name, version,
        f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12{upstream}",
        namespace="debian", source_name=source or name, source_version=source_version or version,
    )  # fmt: skip


def pypi(name: str, version: str) -> Package:
    return Package(PackageType.PYPI, name, version, f"pkg:pypi/{name}@{version}")


def sbom(*packages: Package, root: str | None = None, digest: str | None = None, name: str = "test") -> Sbom:
    return Sbom(name, root, "linux/amd64", digest, packages=list(packages), distro="debian-12")
