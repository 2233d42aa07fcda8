"""Vulnerabilities: the database (OSV, Debian security tracker, CISA KEV), version rules per
ecosystem, matching an SBOM with Debian-accurate verdicts, and reports (table, JSON, SARIF, Markdown).

Typical use::

    database = require_database(settings)
    result = scan_sbom(load_sbom("bastion/python:3.11", settings), database)
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

# Loaded on first use (PEP 562, bastion._lazy): the database layer (SQLAlchemy) and the rest; a rebuild
# that only asks data_version (stdlib sqlite3) whether its CVE scan is current needs none of them
# (docs/benchmarks.md, import costs).
if TYPE_CHECKING:
    from bastion.vuln._db import (
        SCHEMA_VERSION,
        ImportCounts,
        SourceStatus,
        SqlVulnDatabase,
        VulnDatabase,
        open_database,
    )
    from bastion.vuln._import import import_paths
    from bastion.vuln._match import match_sbom
    from bastion.vuln._model import (
        Cvss,
        Finding,
        FixedMatch,
        PackageRef,
        ScanResult,
        Severity,
        State,
        Suppression,
    )
    from bastion.vuln._report import (
        FINDING_COLUMNS,
        finding_row,
        render_markdown,
        summary,
        to_json,
        to_sarif,
    )
    from bastion.vuln._scan import (
        cve_scan_attestation,
        filter_result,
        load_sbom,
        require_database,
        scan_sbom,
    )
    from bastion.vuln._state import data_version, database_path
    from bastion.vuln._update import (
        VulnConfig,
        load_config,
        stale_sources,
        update,
    )

__getattr__ = lazy_attributes(__name__)


__all__ = [
    "FINDING_COLUMNS",
    "SCHEMA_VERSION",
    "Cvss",
    "Finding",
    "FixedMatch",
    "ImportCounts",
    "PackageRef",
    "ScanResult",
    "Severity",
    "SourceStatus",
    "SqlVulnDatabase",
    "State",
    "Suppression",
    "VulnConfig",
    "VulnDatabase",
    "cve_scan_attestation",
    "data_version",
    "database_path",
    "filter_result",
    "finding_row",
    "import_paths",
    "load_config",
    "load_sbom",
    "match_sbom",
    "open_database",
    "render_markdown",
    "require_database",
    "scan_sbom",
    "stale_sources",
    "summary",
    "to_json",
    "to_sarif",
    "update",
]
