"""The CVE clock: for each published image and vulnerability, when Bastion first saw it affect the
image, when a fix became available, and when an image without it was published.

One row of ``cve_clock`` (:mod:`bastion.factory._db`) per image (the definition's name, not a digest:
the clock runs across the image's publications) and vulnerability (a finding's preferred id, the CVE
when one is known; every package it affects in the image is one item). :func:`observe` is the only
writer; docs/sla.md states the semantics:

* ``first_seen_at`` — the first observation (a scan of the image's current publication) with an
  active finding for it; a vulnerability that comes back after its item closed reopens the item
  with a new ``first_seen_at`` (one item per image and vulnerability; the earlier closing is not kept).
* ``fix_available_at`` — Bastion's vulnerability data stores a fixed version but no date for it, so
  this is when Bastion's data first showed a fixed version: the import time of the finding's
  source(s) as recorded by the first scan that carried the fixed version (``ScanResult.database``),
  never later than that scan. Kept once set.
* ``closed_at``/``closed_by`` — the first observation without the finding: the publication of an
  image without it (``published=True``, or a re-scan of a publication newer than the item: closed at
  its ``published_at``), or a re-scan of the same publication whose newer data no longer reports it
  (closed at the re-scan). ``closed_by`` is the publication scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from bastion._clock import rfc3339
from bastion.factory._db import cve_clock, publications, transaction

if TYPE_CHECKING:
    from bastion.factory._state import FactoryState
    from bastion.vuln import Finding, ScanResult

__all__ = ["ClockItem", "Observation", "Publication", "clock_items", "current_publications", "observe"]

# Column widths of cve_clock (revision 0002): longer text is cut, never refused.
_PACKAGES = 256
_VERSION = 256


@dataclass(frozen=True)
class Publication:
    """One row of ``publications``: an image name, its digest and when it was published."""

    id: int
    image: str
    reference: str
    digest: str
    published_at: datetime


@dataclass(frozen=True)
class ClockItem:
    """One image's clock for one vulnerability."""

    image: str
    vulnerability: str
    packages: str
    severity: str
    kev: bool
    first_seen_at: datetime
    fix_available_at: datetime | None
    fixed_version: str | None
    closed_at: datetime | None
    closed_digest: str | None
    """The digest of the publication that closed the item (``closed_by``)."""

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Observation:
    """What :func:`observe` changed: vulnerability ids opened (or reopened), closed, and updated
    (severity, KEV membership, packages or the fix changed); ``open``: every item still open."""

    image: str
    digest: str
    opened: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    open: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the image's findings differ from what the clock held (a re-attestation is due)."""
        return bool(self.opened or self.closed or self.updated)


@dataclass(frozen=True)
class _Seen:
    """The active findings of one vulnerability in one scan, merged."""

    packages: str
    severity: str
    kev: bool
    fixed_version: str | None
    fix_at: datetime | None


def observe(
    state: FactoryState,
    image: str,
    digest: str,
    scan: ScanResult,
    *,
    now: datetime,
    published: bool,
) -> Observation:
    """Open, update and close ``image``'s clock items from ``scan`` (a scan of ``digest``, the image's
    current publication, taken at ``now``). ``published``: ``digest`` was published just now (the
    factory's call after a publication); else this is a re-scan. Idempotent: the same scan observed
    again changes nothing. One transaction."""
    seen = _merge(scan.findings, scan.database, now)
    with transaction(state.engine) as connection:
        publication = _publication(connection, image, digest)
        rows = {
            row["vulnerability"]: row
            for row in connection.execute(select(cve_clock).where(cve_clock.c.image == image)).mappings()
        }
        opened, updated, closed = [], [], []
        for vulnerability, found in sorted(seen.items()):
            row = rows.get(vulnerability)
            values = {
                "package": found.packages,
                "severity": found.severity,
                "kev": found.kev,
                "fixed_version": found.fixed_version,
            }
            if row is None or row["closed_at"] is not None:
                fresh = {
                    **values,
                    "first_seen_at": rfc3339(now),
                    "fix_available_at": rfc3339(found.fix_at) if found.fix_at else None,
                    "closed_at": None,
                    "closed_by": None,
                }
                _upsert(connection, image, vulnerability, fresh)
                opened.append(vulnerability)
                continue
            if row["fix_available_at"] is None and found.fix_at is not None:
                values["fix_available_at"] = rfc3339(found.fix_at)
            if row["fixed_version"] is not None and found.fixed_version is None:
                values["fixed_version"] = row["fixed_version"]  # a fix once seen stays known
            if any(row[name] != value for name, value in values.items()):
                connection.execute(update(cve_clock).where(cve_clock.c.id == row["id"]).values(**values))
                updated.append(vulnerability)
        for vulnerability, row in sorted(rows.items()):
            if row["closed_at"] is not None or vulnerability in seen:
                continue
            closing = _closing_time(now, published, publication, _parse(row["first_seen_at"]))
            connection.execute(
                update(cve_clock)
                .where(cve_clock.c.id == row["id"])
                .values(closed_at=rfc3339(closing), closed_by=publication.id if publication else None)
            )
            closed.append(vulnerability)
    return Observation(image, digest, tuple(opened), tuple(closed), tuple(updated), tuple(sorted(seen)))


def _closing_time(
    now: datetime, published: bool, publication: Publication | None, first_seen: datetime
) -> datetime:
    """When the image stopped being affected: a publication without the finding closes the item when
    it was published; a re-scan of the same publication (data that no longer reports it) at ``now``."""
    if published or publication is None:
        return max(now, first_seen)
    return publication.published_at if publication.published_at > first_seen else max(now, first_seen)


def _merge(findings: Iterable[Finding], database: Mapping[str, str], now: datetime) -> dict[str, _Seen]:
    from bastion.vuln import Severity

    by_id: dict[str, list[Finding]] = {}
    for finding in findings:
        by_id.setdefault(finding.id, []).append(finding)
    merged = {}
    for vulnerability, group in by_id.items():
        worst = min((f.severity for f in group), key=lambda s: Severity(s).rank)
        fixed = sorted({f.fixed_version for f in group if f.state.has_fix and f.fixed_version})
        fix_at = None
        if fixed:
            imported = [_parse(database[s]) for f in group for s in f.sources if s in database]
            fix_at = min([*imported, now])
        names = ", ".join(sorted({f.package.name for f in group}))
        merged[vulnerability[:128]] = _Seen(
            packages=_cut(names, _PACKAGES),
            severity=str(worst),
            kev=any(f.kev for f in group),
            fixed_version=_cut(", ".join(fixed), _VERSION) if fixed else None,
            fix_at=fix_at,
        )
    return merged


def _upsert(connection: Connection, image: str, vulnerability: str, values: Mapping[str, Any]) -> None:
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(cve_clock).values(image=image, vulnerability=vulnerability, **values)
    connection.execute(
        statement.on_conflict_do_update(index_elements=["image", "vulnerability"], set_=dict(values))
    )


def _publication(connection: Connection, image: str, digest: str) -> Publication | None:
    row = (
        connection.execute(
            select(publications)
            .where(and_(publications.c.image == image, publications.c.digest == digest))
            .order_by(publications.c.published_at.desc(), publications.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return _publication_of(row) if row is not None else None


def _publication_of(row: RowMapping) -> Publication:
    return Publication(row["id"], row["image"], row["reference"], row["digest"], _parse(row["published_at"]))


def current_publications(state: FactoryState) -> list[Publication]:
    """Each image's newest publication (the one users pull), by image name."""
    with transaction(state.engine) as connection:
        rows = connection.execute(
            select(publications).order_by(publications.c.published_at, publications.c.id)
        ).mappings()
        newest = {row["image"]: _publication_of(row) for row in rows}
    return [newest[name] for name in sorted(newest)]


def clock_items(state: FactoryState, *, images: Sequence[str] = ()) -> list[ClockItem]:
    """Every clock item (of ``images`` when given), open ones first, then by image and id."""
    query = select(cve_clock, publications.c.digest).join_from(
        cve_clock, publications, cve_clock.c.closed_by == publications.c.id, isouter=True
    )
    if images:
        query = query.where(cve_clock.c.image.in_(list(images)))
    with transaction(state.engine) as connection:
        rows = connection.execute(query.order_by(cve_clock.c.image, cve_clock.c.id)).mappings().all()
    items = [
        ClockItem(
            image=row["image"],
            vulnerability=row["vulnerability"],
            packages=row["package"] or "",
            severity=row["severity"],
            kev=bool(row["kev"]),
            first_seen_at=_parse(row["first_seen_at"]),
            fix_available_at=_parse(row["fix_available_at"]) if row["fix_available_at"] else None,
            fixed_version=row["fixed_version"],
            closed_at=_parse(row["closed_at"]) if row["closed_at"] else None,
            closed_digest=row["digest"],
        )
        for row in rows
    ]
    return sorted(items, key=lambda item: not item.open)


def _parse(text: str) -> datetime:
    """An RFC 3339 time as :mod:`bastion._clock` writes it (``Z``) or a feed's ``+00:00`` form."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fixed_by(state: FactoryState, image: str, package: str, version: str) -> list[str]:
    """The open clock items of ``image`` that ``package`` at ``version`` fixes: the item names the
    package and one of its fixed versions is at or below ``version`` (Debian's order, Policy §5.6.12).
    A job for such a change is a CVE fix, which the task engine runs first (the ``fixes`` queue)."""
    from bastion.debian import debian_version_key, is_debian_version

    if not is_debian_version(version):
        return []
    found = []
    with state.engine.connect() as connection:
        query = select(cve_clock).where(and_(cve_clock.c.image == image, cve_clock.c.closed_at.is_(None)))
        for row in connection.execute(query).mappings():
            names = {n.strip() for n in (row["package"] or "").split(",")}
            fixed = [v.strip() for v in (row["fixed_version"] or "").split(",")]
            if package in names and any(
                is_debian_version(v) and debian_version_key(v) <= debian_version_key(version) for v in fixed
            ):
                found.append(str(row["vulnerability"]))
    return sorted(found)
