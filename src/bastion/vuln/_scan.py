"""Scanning an image or an SBOM file, filtering the result, and the CVE-scan attestation predicate a
build attaches (the OpenVEX document beside it is made from the same scan by :mod:`bastion.vex`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

import bastion
from bastion._clock import rfc3339
from bastion.config import Settings
from bastion.errors import InputError
from bastion.oci import ImageRef, Scheme, parse_image_ref
from bastion.sbom import Sbom
from bastion.vuln._match import match_sbom
from bastion.vuln._model import ScanResult, Severity, State
from bastion.vuln._read import VulnDatabase, open_for_scan
from bastion.vuln._report import summary, to_json
from bastion.vuln._state import database_path

__all__ = [
    "cve_scan_attestation",
    "filter_result",
    "load_sbom",
    "require_database",
    "scan_sbom",
]


def require_database(settings: Settings) -> VulnDatabase:
    """The database to scan with: read through the standard library's sqlite3 when it has this
    Bastion's schema (so a scan does not load SQLAlchemy), else opened by the database layer, which
    migrates an older schema or refuses a newer one."""
    path = database_path(settings.home)
    if not path.exists():
        raise InputError(
            "no vulnerability database",
            where=str(path),
            hint="run `bastion db import PATH` or `bastion db update`",
        )
    database = open_for_scan(path)
    if database is not None:
        return database
    from bastion.vuln._db import open_database

    return open_database(settings.home)


def load_sbom(reference: str | ImageRef, settings: Settings, *, platform: str | None = None) -> Sbom:
    """``sbom://FILE`` read back, any other reference (:func:`bastion.oci.parse_image_ref`) opened
    and scanned."""
    ref = parse_image_ref(reference)
    if ref.scheme is Scheme.sbom:
        from bastion.vuln._sbomfile import read_sbom

        assert ref.path is not None  # sbom:// names a path (parse_image_ref)
        return read_sbom(ref.path)
    from bastion.sbom import scan_image

    return scan_image(ref, settings, platform=platform)


def scan_sbom(sbom: Sbom, database: VulnDatabase, *, max_age_hours: float | None = None) -> ScanResult:
    """Match ``sbom`` and record the database's sources (with a warning when they are stale)."""
    from bastion.vuln._update import stale_sources

    result = match_sbom(sbom, database)
    sources = database.sources()
    result.database = {s.name: s.imported_at for s in sources}
    if max_age_hours is not None:
        result.warnings += stale_sources(database, max_age_hours)
    return result


def filter_result(
    result: ScanResult,
    *,
    only_fixed: bool = False,
    only_unfixed: bool = False,
    severities: Collection[Severity] = (),
    only_kev: bool = False,
) -> ScanResult:
    """Keep the findings the options ask for (suppressed findings are filtered the same way)."""

    def keep(finding: Any) -> bool:
        if only_fixed and finding.state is not State.FIXED:
            return False
        if only_unfixed and finding.state is State.FIXED:
            return False
        if severities and finding.severity not in severities:
            return False
        return not (only_kev and not finding.kev)

    return dataclasses.replace(
        result,
        findings=[f for f in result.findings if keep(f)],
        suppressed=[f for f in result.suppressed if keep(f)],
    )


def cve_scan_attestation(
    reference: str,
    settings: Settings,
    *,
    platform: str | None = None,
    sbom: Sbom | None = None,
) -> tuple[dict[str, Any], ScanResult] | None:
    """For ``bastion build``: the CVE-scan predicate (type :data:`bastion.attest.CVE_SCAN_PREDICATE_TYPE`) of a scan
    of an image, with the scan it records (findings before any VEX); ``None`` when no database is
    present. Pass ``sbom`` when the build already has it. The predicate's
    ``metadata.scanFinishedOn`` is when the scan ended."""
    if not database_path(settings.home).exists():
        return None
    started = rfc3339()
    database = require_database(settings)
    try:
        result = scan_sbom(sbom or load_sbom(reference, settings, platform=platform), database)
    finally:
        database.close()
    finished = rfc3339()
    import json

    predicate = {
        "invocation": {"parameters": [reference], "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": f"pkg:pypi/bastion@{bastion.__version__}",
            "version": bastion.__version__,
            "db": {"uri": "", "version": max(result.database.values(), default="")},
            "result": json.loads(to_json(result)),
        },
        "metadata": {"scanStartedOn": started, "scanFinishedOn": finished, "summary": summary(result)},
    }
    return predicate, result
