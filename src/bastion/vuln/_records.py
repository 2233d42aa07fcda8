"""What an import reads, as it reaches the database: plain values, with no database library behind
them, so the processes that parse feeds (``_parse``) need not import one."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImportCounts", "KevEntry", "Record"]


@dataclass(frozen=True)
class Record:
    """One advisory as imported: an OSV record, or one CVE of the Debian tracker."""

    source: str  # osv | debian-tracker
    id: str
    modified: str
    published: str | None
    summary: str
    aliases: tuple[str, ...]
    severity: tuple[tuple[str, str], ...]  # (type, vector) as OSV "severity" has them
    db_severity: str | None  # database_specific.severity (GHSA: LOW/MODERATE/HIGH/CRITICAL)
    affected: tuple[tuple[str, str, str], ...]  # (ecosystem, package key, data JSON)
    digest: str
    withdrawn: bool = False


@dataclass(frozen=True)
class KevEntry:
    cve_id: str
    date_added: str | None
    due_date: str | None
    ransomware: str | None
    name: str | None


@dataclass
class ImportCounts:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    skipped: int = 0
    superseded: int = 0  # an earlier copy of a record that a later one in the same input replaced
    kev: int = 0
    reasons: list[str] = field(default_factory=list)  # the first reasons records were skipped

    @property
    def imported(self) -> int:
        return self.added + self.replaced + self.unchanged

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.reasons) < 5:
            self.reasons.append(reason)
