"""Reading vulnerability feeds, recognised by content (never by file name):

* OSV records (OSV schema 1.x, https://ossf.github.io/osv-schema/): one JSON or YAML record, a JSON
  list of records, a directory of them, or a zip archive such as the per-ecosystem ``all.zip``;
* the Debian security tracker JSON feed (``{source package: {CVE: {releases: {codename: ...}}}}``);
* the CISA Known Exploited Vulnerabilities catalogue (``{"catalogVersion", "vulnerabilities": [...]}``).

A malformed record (missing field, a field of the wrong type, bad range, a version the ecosystem cannot
order, unknown ecosystem) is skipped and counted with the first reasons; it never aborts an import, and
nothing a scan would trip on is stored. A file that is not JSON or YAML, or nests deeper or holds more
values than :mod:`bastion.documents` allows, is refused when named on the command line and skipped
(counted) inside a directory or an archive. Records are checked by hand rather than with the OSV JSON schema:
the schema validator runs at about 2,000 records/s, a tenth of the import goal, and matching needs only
the fields checked here.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from bastion.debian import is_debian_version
from bastion.errors import InputError
from bastion.vuln._db import ImportCounts, KevEntry, Record, VulnDatabase, VulnWriter
from bastion.vuln._parse import MAX_MEMBER, decode, open_archive, osv_record, parse_members, text
from bastion.vuln._parse import kind as kind_of

__all__ = ["DEBIAN_CODENAMES", "ImportReport", "import_paths", "osv_record", "tracker_records"]

#: Debian release codenames -> numbers, as OSV names Debian ecosystems (``Debian:12``).
DEBIAN_CODENAMES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
_TRACKER_STATUS = ("resolved", "open", "undetermined")
_TRACKER_TEXT = ("urgency", "nodsa", "nodsa_reason")  # data/json: strings when present
_KEV_TEXT = ("dateAdded", "dueDate", "knownRansomwareCampaignUse", "vulnerabilityName")


class ImportReport(ImportCounts):
    """Counts of one ``db import`` or ``db update``, per run."""


def tracker_records(data: dict[str, Any], counts: ImportCounts, where: str) -> Iterator[Record]:
    """The Debian tracker feed regrouped by CVE: one record per CVE, one affected row per (release,
    source package). Releases with a codename Bastion does not know are left out."""
    by_cve: dict[str, dict[str, Any]] = {}
    bad: set[str] = set()
    for package, cves in data.items():
        if not isinstance(cves, dict):
            counts.skip(f"{where}: {package}: not an object of CVEs")
            continue
        for cve, body in cves.items():
            problem = _tracker_problem(body)
            if problem:
                counts.skip(f"{where}: {package}/{cve}: {problem}")
                bad.add(cve)
                continue
            entry = by_cve.setdefault(cve, {"description": text(body.get("description")), "packages": {}})
            entry["packages"][package] = body["releases"]
    for cve in sorted(by_cve):
        entry = by_cve[cve]
        rows: list[tuple[str, str, str]] = []
        for package in sorted(entry["packages"]):
            for codename, release in sorted(entry["packages"][package].items()):
                number = DEBIAN_CODENAMES.get(codename)
                if number is None:
                    continue
                state = {"kind": "tracker", **{k: release[k] for k in
                         ("status", "fixed_version", "urgency", "nodsa", "nodsa_reason") if k in release}}  # fmt: skip
                rows.append((f"Debian:{number}", package, json.dumps(state, separators=(",", ":"))))
        # The digest covers exactly what is stored (rows are built in sorted order).
        canonical = "\n".join([entry["description"], *("\t".join(row) for row in rows)]).encode()
        yield Record(
            source="debian-tracker",
            id=cve,
            modified="",
            published=None,
            summary=entry["description"].split("\n", 1)[0][:300],
            aliases=(),
            severity=(),
            db_severity=None,
            affected=tuple(rows),
            digest=hashlib.sha256(canonical).hexdigest(),
        )


def _tracker_problem(body: Any) -> str | None:
    """What makes one CVE of one package unusable, as the tracker's data/json writes it: every release
    a status, a ``fixed_version`` that is ``"0"`` (never affected) or a Debian version, and strings for
    the fields a scan reads."""
    if not isinstance(body, dict) or not isinstance(body.get("releases"), dict):
        return "no releases object"
    for codename, release in body["releases"].items():
        if not isinstance(release, dict) or release.get("status") not in _TRACKER_STATUS:
            return f"{codename}: status is not one of {', '.join(_TRACKER_STATUS)}"
        fixed = release.get("fixed_version")
        if release["status"] == "resolved" and not isinstance(fixed, str):
            return f"{codename}: resolved without a fixed_version"
        if fixed is not None and not (isinstance(fixed, str) and (fixed == "0" or is_debian_version(fixed))):
            return f"{codename}: fixed_version is not a Debian version: {fixed!r:.80}"
        for key in _TRACKER_TEXT:
            if release.get(key) is not None and not isinstance(release[key], str):
                return f"{codename}: {key} is not a string: {release[key]!r:.80}"
    return None


def _kev_entries(data: dict[str, Any], counts: ImportCounts, where: str) -> list[KevEntry]:
    entries = []
    for item in data["vulnerabilities"]:
        if not isinstance(item, dict) or not isinstance(item.get("cveID"), str):
            counts.skip(f"{where}: KEV entry without cveID")
            continue
        # KEV schema: these fields are strings.
        wrong = next(
            (key for key in _KEV_TEXT if item.get(key) is not None and not isinstance(item[key], str)), None
        )
        if wrong is not None:
            counts.skip(f"{where}: {item['cveID']}: {wrong} is not a string: {item[wrong]!r:.80}")
            continue
        entries.append(
            KevEntry(
                item["cveID"], item.get("dateAdded"), item.get("dueDate"),
                item.get("knownRansomwareCampaignUse"), item.get("vulnerabilityName"),
            )
        )  # fmt: skip
    return entries


# -- parallel parsing of large archives (see _Importer._parallel) ------------------------------------

_PARALLEL_MEMBERS = 5000  # below this, starting worker interpreters costs more than it saves
_TASK_MEMBERS = 2000
_MAX_WORKERS = 4


class _Importer:
    """Reads paths and writes what it reads through ``writer`` (inside the caller's transaction) in
    batches, so memory stays bounded however large the feed."""

    def __init__(self, counts: ImportCounts, writer: VulnWriter, workers: int) -> None:
        self.counts = counts
        self.writer = writer
        self.workers = workers
        self.records: list[Record] = []
        self.sources: dict[str, str] = {}

    def flush(self) -> None:
        self.writer.put_records(self.records, self.counts)
        self.records = []

    def file(self, path: Path, *, top: bool) -> None:
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", where=str(path)) from None
        if raw[:4] == b"PK\x03\x04":
            self.archive(path)
            return
        try:
            data = decode(raw, str(path))
        except InputError as error:
            if top:
                raise
            self.counts.skip(error.diagnostic())
            return
        self.data(data, raw, str(path), top=top)

    def data(self, data: Any, raw: bytes, where: str, *, top: bool) -> None:
        kind = kind_of(data)
        if kind == "osv":
            self.osv(data, raw, where)
        elif kind == "osv-list":
            for index, item in enumerate(data):
                self.osv(item, json.dumps(item, sort_keys=True).encode(), f"{where}[{index}]")
        elif kind == "tracker":
            self.writer.put_records(tracker_records(data, self.counts, where), self.counts)
            self.sources["debian-tracker"] = where
        elif kind == "kev":
            self.writer.put_kev(_kev_entries(data, self.counts, where), self.counts)
            self.sources["kev"] = where
        elif top:
            raise InputError(
                "not an OSV record, a Debian security tracker JSON feed or a KEV catalogue", where=where
            )
        else:
            self.counts.skip(f"{where}: not an OSV record")

    def osv(self, data: Any, raw: bytes, where: str) -> None:
        try:
            record = osv_record(data, raw, where)
        except ValueError as error:
            self.counts.skip(str(error))
            return
        self.add(record, where)

    def add(self, record: Record, where: str) -> None:
        self.records.append(record)
        self.sources.setdefault("osv", where)
        if len(self.records) >= 5000:
            self.flush()

    def archive(self, path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                infos = []
                for info in sorted(archive.infolist(), key=lambda item: item.filename):
                    if info.is_dir() or not info.filename.endswith((".json", ".yaml", ".yml")):
                        continue
                    if info.file_size > MAX_MEMBER:
                        self.counts.skip(f"{path}!{info.filename}: larger than {MAX_MEMBER} bytes")
                        continue
                    infos.append(info)
                if len(infos) >= _PARALLEL_MEMBERS and self.workers > 1:
                    self._parallel(path, archive, infos, self.workers)
                else:
                    for info in infos:
                        self.member(archive, path, info)
        except zipfile.BadZipFile as error:
            raise InputError(f"bad zip archive: {error}", where=str(path)) from None
        self.sources["osv"] = str(path)

    def member(self, archive: zipfile.ZipFile, path: Path, info: zipfile.ZipInfo) -> None:
        where = f"{path}!{info.filename}"
        raw = archive.read(info)
        try:
            data = decode(raw, where)
        except InputError as error:
            self.counts.skip(error.diagnostic())
            return
        self.data(data, raw, where, top=False)

    def _parallel(
        self, path: Path, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], workers: int
    ) -> None:
        """Parse the members in worker processes while this one writes what they return, in the
        archive's order. Decoding and checking records is most of an import and holds the GIL, so
        threads would not help. Workers are spawned, not forked: a forked child would inherit the
        open SQLite connection, which SQLite forbids using (or closing) across fork()."""
        chunks = [infos[i : i + _TASK_MEMBERS] for i in range(0, len(infos), _TASK_MEMBERS)]
        done = 0
        try:
            with ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=open_archive,
                initargs=(str(path),),
            ) as pool:
                names = [[info.filename for info in chunk] for chunk in chunks]
                for chunk, outcomes in zip(chunks, pool.map(parse_members, names), strict=True):
                    for info, (kind, value) in zip(chunk, outcomes, strict=True):
                        if isinstance(value, Record):
                            self.add(value, f"{path}!{info.filename}")
                        elif kind == "skip":
                            self.counts.skip(str(value))
                        else:  # not one OSV record: read again here, as the sequential path does
                            self.member(archive, path, info)
                    done += 1
        except BrokenProcessPool:
            # A worker died (memory, a signal, or a caller whose main module cannot be imported
            # again): what the workers returned is kept, the rest is parsed here.
            for chunk in chunks[done:]:
                for info in chunk:
                    self.member(archive, path, info)

    def directory(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file() and (path.suffix in (".json", ".yaml", ".yml", ".zip")):
                self.file(path, top=False)
        if "osv" in self.sources:
            self.sources["osv"] = str(root)


def import_paths(
    database: VulnDatabase,
    paths: Iterable[Path],
    *,
    feeds: Sequence[tuple[str, str | None, str | None]] = (),
    labels: Mapping[Path, str] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Load every path into ``database`` in one transaction (all or nothing); returns the counts.
    ``feeds`` (url, ETag, Last-Modified) are recorded in the same transaction (``db update``).

    Archives of many records are parsed by ``workers`` processes (default: one per core, at most
    4) started with the ``spawn`` method, which imports the caller's main module again: call this
    under ``if __name__ == "__main__":``, or pass ``workers=1`` to parse in this process."""
    if workers is None:
        workers = min(os.cpu_count() or 1, _MAX_WORKERS)
    paths = list(paths)
    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", where=str(path))
    report = ImportReport()
    with database.transaction() as writer:
        importer = _Importer(report, writer, workers)
        for path in paths:
            if path.is_dir():
                importer.directory(path)
            else:
                importer.file(path, top=True)
        importer.flush()
        for name, location in sorted(importer.sources.items()):
            # A downloaded feed is named by its URL, not by its temporary file.
            named = next(
                (label for path, label in (labels or {}).items() if location.startswith(str(path))), location
            )
            writer.mark_source(name, named)
        for url, etag, modified in feeds:
            writer.set_feed(url, etag, modified)
    return report
