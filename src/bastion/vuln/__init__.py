"""Vulnerabilities: the database (OSV, Debian security tracker, CISA KEV), version rules per
ecosystem, matching an SBOM with Debian-accurate verdicts, and reports (table, JSON, SARIF, Markdown).

Typical use::

    database = require_database(settings)
    result = scan_sbom(load_sbom("bastion/python:3.11", settings), database)
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

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
        render_markdown,
        render_table,
        summary,
        to_json,
        to_sarif,
    )
    from bastion.vuln._scan import (
        CVE_SCAN_PREDICATE_TYPE,
        filter_result,
        load_sbom,
        require_database,
        scan_attestations,
        scan_sbom,
    )
    from bastion.vuln._state import data_version, database_path
    from bastion.vuln._update import (
        VulnConfig,
        load_config,
        update,
    )

# Loaded on first use (PEP 562): the database layer (SQLAlchemy) and the rest take ~0.25 s to import,
# and a rebuild that only asks data_version (stdlib sqlite3) whether its CVE scan is current needs none.
_LAZY = {
    "SCHEMA_VERSION": "_db",
    "ImportCounts": "_db",
    "SourceStatus": "_db",
    "SqlVulnDatabase": "_db",
    "VulnDatabase": "_db",
    "database_path": "_state",
    "open_database": "_db",
    "import_paths": "_import",
    "match_sbom": "_match",
    "Cvss": "_model",
    "Finding": "_model",
    "FixedMatch": "_model",
    "PackageRef": "_model",
    "ScanResult": "_model",
    "Severity": "_model",
    "State": "_model",
    "Suppression": "_model",
    "render_markdown": "_report",
    "render_table": "_report",
    "summary": "_report",
    "to_json": "_report",
    "to_sarif": "_report",
    "CVE_SCAN_PREDICATE_TYPE": "_scan",
    "filter_result": "_scan",
    "load_sbom": "_scan",
    "require_database": "_scan",
    "scan_attestations": "_scan",
    "scan_sbom": "_scan",
    "data_version": "_state",
    "VulnConfig": "_update",
    "load_config": "_update",
    "update": "_update",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "CVE_SCAN_PREDICATE_TYPE",
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
    "data_version",
    "database_path",
    "filter_result",
    "import_paths",
    "load_config",
    "load_sbom",
    "match_sbom",
    "open_database",
    "render_markdown",
    "render_table",
    "require_database",
    "scan_attestations",
    "scan_sbom",
    "summary",
    "to_json",
    "to_sarif",
    "update",
]
