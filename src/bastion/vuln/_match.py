"""Matching an SBOM against the database.

* Debian packages are looked up by **source** package in the image's release (``distro=debian-12`` ->
  ``Debian:12``) and compared with the source version under Debian's rules; the tracker's state for
  that release is kept (see :mod:`bastion.vuln._model`). When the tracker has the CVE, its verdict is
  the one used for Debian packages; OSV's Debian records fill in what the tracker does not cover.
* Language packages are looked up by ecosystem and name (PyPI by PEP 503 name, npm with its scope,
  Go by module path, Maven as ``group:artifact``) and evaluated against OSV ranges and ``versions``.
* Records naming the same vulnerability (id or alias in common: CVE, GHSA, PYSEC, DSA, ...) become one
  finding per package.
* A package whose version does not parse, or that has none, is matched by the records that decide
  without ordering and listed in ``ScanResult.version_problems`` (see :class:`VersionProblem`).
* Nothing in the database stops a scan: a stored record a scan cannot use (a field of the wrong type, a
  version that does not parse, as an older import let through) is left out with a warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bastion.sbom import Package, PackageType, Sbom
from bastion.vuln._cvss import base_score, rating
from bastion.vuln._model import (
    Cvss,
    Finding,
    FixedMatch,
    PackageRef,
    ScanResult,
    Severity,
    State,
    VersionProblem,
)
from bastion.vuln._read import AffectedHit, VulnDatabase
from bastion.vuln._versions import VersionError, affected_by_ranges, compare, normalise_package, parse

__all__ = ["match_sbom", "package_refs"]

_URGENCY_SEVERITY = {"unimportant": Severity.NEGLIGIBLE, "low": Severity.LOW, "medium": Severity.MEDIUM,
                     "high": Severity.HIGH}  # fmt: skip
_DB_SEVERITY = {"low": Severity.LOW, "moderate": Severity.MEDIUM, "medium": Severity.MEDIUM,
                "high": Severity.HIGH, "critical": Severity.CRITICAL}  # fmt: skip
_ID_ORDER = ("CVE-", "GHSA-", "PYSEC-", "GO-", "RUSTSEC-", "DSA-", "DLA-")
_TRACKER_TEXT = ("status", "fixed_version", "urgency", "nodsa", "nodsa_reason")
_MAX_WARNINGS = 20  # per kind; the JSON report lists every package with a version problem


class _Undecided(Exception):
    """Only ordering the package's version could decide this record, and the version does not parse."""


class _BadRecord(Exception):
    """A stored record a scan cannot use."""


def _debian_ecosystem(sbom: Sbom, package: Package) -> str | None:
    distro = sbom.distro or ""
    if package.purl and "distro=" in package.purl:
        distro = package.purl.split("distro=", 1)[1].split("&", 1)[0] or distro
    name, _, number = distro.partition("-")
    return f"Debian:{number}" if name == "debian" and number else None


def package_refs(sbom: Sbom, warnings: list[str] | None = None) -> list[PackageRef]:
    """The packages of ``sbom`` with the ecosystem and name each is matched by; a package without a
    version is kept (with ``matched_version`` empty), to be matched by what needs no version."""
    refs: list[PackageRef] = []
    unmatched_debian = 0
    for package in sbom.packages:
        ecosystem: str | None = None
        key, version = package.name, package.version
        if package.type is PackageType.DEB:
            ecosystem = _debian_ecosystem(sbom, package)
            key, version = package.source_name or package.name, package.source_version or package.version
            if ecosystem is None:
                unmatched_debian += 1
                continue
        elif package.type is PackageType.PYPI:
            ecosystem, key = "PyPI", normalise_package("PyPI", package.name)
        elif package.type is PackageType.NPM:
            ecosystem = "npm"
            key = f"@{package.namespace}/{package.name}" if package.namespace else package.name
        elif package.type is PackageType.GOLANG:
            ecosystem = "Go"
            key = f"{package.namespace}/{package.name}" if package.namespace else package.name
        elif package.type is PackageType.MAVEN:
            ecosystem = "Maven"
            key = f"{package.namespace}:{package.name}" if package.namespace else package.name
        if ecosystem is None:
            continue
        refs.append(
            PackageRef(
                str(package.type), package.name, package.version, package.purl, ecosystem, key, version
            )
        )
    if unmatched_debian and warnings is not None:
        warnings.append(
            f"{unmatched_debian} Debian packages not matched: the image's Debian release is unknown"
        )
    return refs


@dataclass
class _Verdict:
    ids: set[str]
    tracker: bool
    state: State | None  # None: the shipped version is fixed
    fixed_version: str | None
    urgency: str | None
    note: str | None
    summary: str
    source: str


def _tracker_verdict(  # noqa: PLR0911  (one return per Debian tracker state)
    ref: PackageRef, data: dict[str, Any], orderable: bool
) -> tuple[State | None, str | None] | None:
    """Debian security tracker, data/json, one release of one source package."""
    fixed = data.get("fixed_version")
    if fixed == "0":
        return None  # never affected in this release: no finding
    status = data.get("status")
    if status == "undetermined":
        return State.UNDETERMINED, None
    if fixed and not orderable:
        raise _Undecided
    if fixed:
        # resolved (or open with a fix already named): affected only below the fixed version
        return (
            (State.FIXED, fixed) if compare(ref.ecosystem, ref.matched_version, fixed) < 0 else (None, fixed)
        )
    if status == "resolved":
        return None
    urgency = (data.get("urgency") or "").rstrip("*")
    reason = data.get("nodsa_reason") or ""
    if reason == "postponed":
        return State.POSTPONED, None
    if reason == "ignored":
        return State.IGNORED, None
    if urgency == "end-of-life":
        return State.END_OF_LIFE, None
    if data.get("nodsa"):
        return State.NO_DSA, None
    if urgency == "unimportant":
        return State.UNIMPORTANT, None
    return State.OPEN, None


def _every_version(events: list[dict[str, str]]) -> bool:
    """Whether an OSV range affects every version: introduced at 0, never fixed (OSV schema,
    "Evaluation": nothing turns it off)."""
    kinds = [next(iter(event)) for event in events]
    return {"introduced": "0"} in events and "fixed" not in kinds and "last_affected" not in kinds


def _osv_verdict(
    ref: PackageRef, data: dict[str, Any], orderable: bool
) -> tuple[State | None, str | None] | None:
    versions: list[str] = data["versions"]
    ranges: list[list[dict[str, str]]] = data["ranges"]
    unfixed = State.OPEN if ref.ecosystem.startswith("Debian:") else State.AFFECTED
    if not orderable:
        if (ref.matched_version and ref.matched_version in versions) or any(map(_every_version, ranges)):
            return unfixed, None
        if ranges:
            raise _Undecided
        return None
    affected, fixed_versions, fixed_here = False, [], None
    for events in ranges:
        hit, fixed, here = affected_by_ranges(ref.ecosystem, ref.matched_version, events)
        affected = affected or hit
        fixed_here = fixed_here or here
        if hit and fixed:
            fixed_versions.append(fixed)
    if not affected and ref.matched_version in versions:
        affected = True
    if not affected:
        return (None, fixed_here) if fixed_here else None
    fixed_version = max(fixed_versions, key=lambda v: parse(ref.ecosystem, v)) if fixed_versions else None
    if fixed_version:
        return State.FIXED, fixed_version
    return unfixed, None


def _check_record(data: Any) -> None:
    """Raise :class:`_BadRecord` unless ``data`` has the shape the importer writes (``_import``)."""
    if not isinstance(data, dict):
        raise _BadRecord("not an object")
    if data.get("kind") == "tracker":
        wrong = [key for key in _TRACKER_TEXT if data.get(key) is not None and not isinstance(data[key], str)]
        if wrong:
            raise _BadRecord(f"{wrong[0]} is not a string")
        return
    if data.get("kind") != "osv":
        raise _BadRecord(f"unknown kind {data.get('kind')!r:.40}")
    versions, ranges = data.get("versions"), data.get("ranges")
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise _BadRecord("versions is not a list of strings")
    if not isinstance(ranges, list) or not all(
        isinstance(events, list)
        and all(
            isinstance(e, dict) and len(e) == 1 and all(isinstance(v, str) for v in e.values())
            for e in events
        )
        for events in ranges
    ):
        raise _BadRecord("ranges is not a list of event lists")
    if data.get("urgency") is not None and not isinstance(data["urgency"], str):
        raise _BadRecord("urgency is not a string")


def _merge(verdicts: list[_Verdict]) -> list[list[_Verdict]]:
    """Groups of verdicts that share an id (union by alias), in the order of their first verdict."""
    parent = list(range(len(verdicts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for index, verdict in enumerate(verdicts):
        for ident in verdict.ids:
            other = first_with.setdefault(ident, index)
            if other != index:
                a, b = find(other), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[_Verdict]] = {}
    for index, verdict in enumerate(verdicts):
        groups.setdefault(find(index), []).append(verdict)
    return list(groups.values())


@lru_cache(maxsize=65536)
def _id_order(ident: str) -> tuple[int, str]:
    rank = next((i for i, prefix in enumerate(_ID_ORDER) if ident.startswith(prefix)), len(_ID_ORDER))
    return rank, ident


def _primary(ids: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    ordered = sorted(set(ids), key=_id_order)
    return ordered[0], tuple(ordered[1:])


def _severity(
    ref: PackageRef, urgency: str | None, cvss: list[Cvss], db_severities: list[str]
) -> tuple[Severity, str]:
    if ref.ecosystem.startswith("Debian:") and urgency in _URGENCY_SEVERITY:
        return _URGENCY_SEVERITY[urgency], "debian"  # Debian's urgency first, never NVD's
    scores = [item.score for item in cvss if item.score is not None]
    if scores:
        label = rating(max(scores))
        return (Severity(label) if label != "none" else Severity.NEGLIGIBLE), "cvss"
    for value in db_severities:
        if value.lower() in _DB_SEVERITY:
            return _DB_SEVERITY[value.lower()], "advisory"
    return Severity.UNKNOWN, "none"


def match_sbom(sbom: Sbom, database: VulnDatabase) -> ScanResult:
    """Every finding for ``sbom`` (before VEX), plus the vulnerabilities its versions already fix."""
    result = ScanResult(sbom.name, sbom.root_purl, sbom.manifest_digest, sbom.platform, sbom.distro,
                        index_digest=sbom.index_digest)  # fmt: skip
    refs = package_refs(sbom, result.warnings)
    result.packages = refs
    by_key: dict[tuple[str, str], list[PackageRef]] = {}
    for ref in refs:
        by_key.setdefault((ref.ecosystem, ref.key), []).append(ref)
    wanted: dict[str, set[str]] = {}
    for ecosystem, key in by_key:
        wanted.setdefault(ecosystem, set()).add(key)
    problems = {ref.purl: problem for ref in refs if (problem := _version_problem(ref)) is not None}
    hits = database.lookup(wanted)
    per_package: dict[str, list[_Verdict]] = {}
    undecided: Counter[str] = Counter()
    bad: dict[tuple[str, str], str] = {}
    for hit in hits:
        for ref in by_key.get((hit.ecosystem, hit.package), []):
            try:
                verdict = _verdict(ref, hit, ref.purl not in problems)
            except _Undecided:
                undecided[ref.purl] += 1
                continue
            except (_BadRecord, VersionError) as error:  # the package's version parses: the record's does not
                bad.setdefault((hit.source, hit.advisory_id), f"{hit.ecosystem} {hit.package}: {error}")
                continue
            if verdict is not None:
                per_package.setdefault(ref.purl, []).append(verdict)
    result.version_problems = [
        VersionProblem(ref, problems[ref.purl], undecided[ref.purl]) for ref in refs if ref.purl in problems
    ]
    result.warnings += _warnings(result.version_problems, bad)
    pending: list[tuple[PackageRef, list[_Verdict]]] = []
    all_ids: set[str] = set()
    ref_by_purl = {ref.purl: ref for ref in refs}
    for purl, verdicts in per_package.items():
        for group in _merge(verdicts):
            pending.append((ref_by_purl[purl], group))
            deciding = [v for v in group if v.tracker] or group
            if any(v.state is not None for v in deciding):  # severity and KEV only for findings
                for verdict in group:
                    all_ids |= verdict.ids
    severities = database.severities(all_ids) if all_ids else {}
    kev = database.kev_ids({i for i in all_ids if i.startswith("CVE-")}) if all_ids else set()
    for ref, group in pending:
        _conclude(result, ref, group, severities, kev, problems.get(ref.purl))
    result.findings.sort(key=lambda f: (f.severity.rank, f.package.name, f.package.version, f.id))
    result.fixed.sort(key=lambda f: (f.package.name, f.id))
    return result


def _version_problem(ref: PackageRef) -> str | None:
    if not ref.matched_version:
        return "no version"
    try:
        parse(ref.ecosystem, ref.matched_version)
    except VersionError as error:
        return str(error)
    return None


def _warnings(problems: list[VersionProblem], bad: dict[tuple[str, str], str]) -> list[str]:
    lines = []
    for item in problems[:_MAX_WARNINGS]:
        line = f"{item.package.purl}: {item.problem}: matched only by records that affect every version"
        if item.undecided:
            line += f"; records that affect only some versions, left undecided: {item.undecided}"
        lines.append(line)
    if len(problems) > _MAX_WARNINGS:
        lines.append(f"{len(problems) - _MAX_WARNINGS} more packages whose version cannot be ordered "
                     "(version_problems in --format json)")  # fmt: skip
    for (source, ident), reason in sorted(bad.items())[:_MAX_WARNINGS]:
        lines.append(f"{source} record {ident} left out: malformed in the database ({reason})")
    if len(bad) > _MAX_WARNINGS:
        lines.append(f"{len(bad) - _MAX_WARNINGS} more malformed records left out")
    return lines


def _verdict(ref: PackageRef, hit: AffectedHit, orderable: bool) -> _Verdict | None:
    """The verdict of one record on one package; raises :class:`_Undecided` when only ordering an
    unorderable version could decide, :class:`_BadRecord` or :class:`VersionError` for a record that
    is not what the importer writes."""
    _check_record(hit.data)
    tracker = hit.data["kind"] == "tracker"
    outcome = (
        _tracker_verdict(ref, hit.data, orderable) if tracker else _osv_verdict(ref, hit.data, orderable)
    )
    if outcome is None:
        return None
    state, fixed = outcome
    urgency = hit.data.get("urgency")
    nodsa = hit.data.get("nodsa")
    return _Verdict(
        ids={hit.advisory_id, *hit.aliases},
        tracker=tracker,
        state=state,
        fixed_version=fixed,
        urgency=urgency.rstrip("*") if isinstance(urgency, str) else None,
        note=nodsa if isinstance(nodsa, str) and nodsa else None,
        summary=hit.summary,
        source=hit.source,
    )


def _conclude(
    result: ScanResult,
    ref: PackageRef,
    group: list[_Verdict],
    severities: dict[str, list[tuple[tuple[str, str], ...] | str]],
    kev: set[str],
    problem: str | None,
) -> None:
    ids: set[str] = set().union(*(v.ids for v in group))
    primary, aliases = _primary(ids)
    # The tracker is Debian's own verdict for Debian packages: it decides when it has the CVE.
    deciding = [v for v in group if v.tracker] or group
    affected = [v for v in deciding if v.state is not None]
    if not affected:
        fixed = next((v.fixed_version for v in deciding if v.fixed_version), None)
        result.fixed.append(FixedMatch(primary, aliases, ref, fixed))
        return
    with_fix = [v for v in affected if v.fixed_version]
    chosen = with_fix[0] if with_fix else affected[0]
    if len(with_fix) > 1:  # records disagree on the fixed version: the highest one fixes all of them
        chosen = max(with_fix, key=lambda v: parse(ref.ecosystem, v.fixed_version or ""))
    cvss: dict[str, Cvss] = {}
    db_severities: list[str] = []
    for ident in sorted(ids):
        for entry in severities.get(ident, []):
            if isinstance(entry, str):
                db_severities.append(entry)
                continue
            for kind, vector in entry:
                if kind.startswith("CVSS") and vector:
                    cvss[vector] = Cvss(vector, base_score(vector))
    urgency = next((v.urgency for v in deciding if v.urgency), None)
    severity, severity_source = _severity(ref, urgency, list(cvss.values()), db_severities)
    state = chosen.state
    assert state is not None
    result.findings.append(
        Finding(
            id=primary,
            aliases=aliases,
            package=ref,
            state=state,
            fixed_version=chosen.fixed_version,
            severity=severity,
            severity_source=severity_source,
            urgency=urgency,
            cvss=tuple(sorted(cvss.values(), key=lambda c: c.vector)),
            kev=bool(ids & kev),
            summary=next((v.summary for v in group if v.summary), ""),
            sources=tuple(sorted({v.source for v in group})),
            note=next((v.note for v in deciding if v.note), None)
            or (f"{problem}: matched by a record that affects every version" if problem else None),
        )
    )
