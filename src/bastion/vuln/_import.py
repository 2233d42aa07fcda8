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
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import yaml

from bastion.debian import is_debian_version
from bastion.documents import MAX_DEPTH, check_shape, load_json
from bastion.errors import InputError
from bastion.vuln._db import ImportCounts, KevEntry, Record, VulnDatabase, VulnWriter
from bastion.vuln._versions import (
    VersionError,
    debian_release,
    is_known_ecosystem,
    normalise_package,
    parse,
)

__all__ = ["DEBIAN_CODENAMES", "ImportReport", "import_paths", "osv_record", "tracker_records"]

#: Debian release codenames -> numbers, as OSV names Debian ecosystems (``Debian:12``).
DEBIAN_CODENAMES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
_MAX_MEMBER = 32 * 1024 * 1024  # one OSV record in a zip; larger is not a record (zip bomb guard)
_RANGE_EVENTS = ("introduced", "fixed", "last_affected", "limit")
_TRACKER_STATUS = ("resolved", "open", "undetermined")
_TRACKER_TEXT = ("urgency", "nodsa", "nodsa_reason")  # data/json: strings when present
_KEV_TEXT = ("dateAdded", "dueDate", "knownRansomwareCampaignUse", "vulnerabilityName")
#: A YAML document may share nodes (anchors and aliases), so a small file can stand for a huge tree
#: ("billion laughs"); one OSV record holds a few thousand values.
_MAX_YAML_VALUES = 1_000_000
_FLOW = re.compile(rb"[\[\]{}]")  # YAML flow collections open and close
_YAML_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # all scalars stay strings


class ImportReport(ImportCounts):
    """Counts of one ``db import`` or ``db update``, per run."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def osv_record(data: Any, raw: bytes, where: str) -> Record:
    """An OSV record checked and reduced to what matching needs; raises ``ValueError`` naming the
    problem (the caller counts it as skipped)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not an object")
    ident, modified = data.get("id"), data.get("modified")
    if not isinstance(ident, str) or not ident:
        raise ValueError(f"{where}: missing id")
    if not isinstance(modified, str) or not modified:  # OSV schema: "modified" is required
        raise ValueError(f"{where}: {ident}: missing modified")
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{where}: {ident}: aliases is not a list of strings")
    affected_rows: list[tuple[str, str, str]] = []
    unknown: set[str] = set()
    entries = data.get("affected") or []
    if not isinstance(entries, list):
        raise ValueError(f"{where}: {ident}: affected is not a list")
    for entry in entries:
        row = _affected(entry, ident, where, unknown)
        if row is not None:
            affected_rows.append(row)
    if entries and not affected_rows:
        raise ValueError(f"{where}: {ident}: unknown ecosystem {', '.join(sorted(unknown))}")
    severity = _severity(data.get("severity"), ident, where)
    database = data.get("database_specific")
    db_severity = database.get("severity") if isinstance(database, dict) else None
    return Record(
        source="osv",
        id=ident,
        modified=modified,
        published=_text(data.get("published")) or None,
        summary=_text(data.get("summary")) or _text(data.get("details")).split("\n", 1)[0][:300],
        aliases=tuple(aliases),
        severity=severity,
        db_severity=db_severity.lower() if isinstance(db_severity, str) else None,
        affected=tuple(affected_rows),
        digest=hashlib.sha256(raw).hexdigest(),
        withdrawn=bool(data.get("withdrawn")),
    )


def _severity(value: Any, ident: str, where: str) -> tuple[tuple[str, str], ...]:
    # OSV schema, "severity": a list of {type, score} objects, both strings.
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{where}: {ident}: severity is not a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError(f"{where}: {ident}: severity entry without a type: {item!r:.80}")
        if not isinstance(item.get("score"), str):
            raise ValueError(f"{where}: {ident}: severity score is not a string: {item!r:.80}")
        out.append((item["type"], item["score"]))
    return tuple(out)


def _affected(entry: Any, ident: str, where: str, unknown: set[str]) -> tuple[str, str, str] | None:  # noqa: PLR0912  (each field of an OSV affected entry checked in turn)
    if not isinstance(entry, dict) or not isinstance(entry.get("package"), dict):
        raise ValueError(f"{where}: {ident}: affected entry without a package")
    package = entry["package"]
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not isinstance(name, str) or not ecosystem or not name:
        raise ValueError(f"{where}: {ident}: package without ecosystem or name")
    if not is_known_ecosystem(ecosystem):
        unknown.add(ecosystem)
        return None
    debian = debian_release(ecosystem) is not None
    if debian:
        ecosystem = f"Debian:{debian_release(ecosystem)}"
    ranges: list[list[dict[str, str]]] = []
    listed = entry.get("ranges") or []
    if not isinstance(listed, list):
        raise ValueError(f"{where}: {ident}: ranges is not a list")
    for item in listed:
        kind = item.get("type") if isinstance(item, dict) else None
        events = item.get("events") if isinstance(item, dict) else None
        if kind not in ("ECOSYSTEM", "SEMVER", "GIT") or not isinstance(events, list) or not events:
            raise ValueError(f"{where}: {ident}: bad range {item!r:.80}")
        checked: list[dict[str, str]] = []
        for event in events:
            if not isinstance(event, dict) or len(event) != 1:
                raise ValueError(f"{where}: {ident}: bad range event {event!r:.80}")
            ((key, value),) = event.items()
            if key not in _RANGE_EVENTS or not isinstance(value, str) or not value:
                raise ValueError(f"{where}: {ident}: bad range event {event!r:.80}")
            if kind != "GIT" and not (key == "introduced" and value == "0") and key != "limit":
                if debian:
                    # Policy §5.6.12 syntax, checked by pattern (the one matching parses with): building
                    # the sort keys of 200,000 distinct versions would slow the import; matching parses
                    # the few it compares.
                    if not is_debian_version(value):
                        raise ValueError(f"{where}: {ident}: bad range: not a Debian version: {value!r}")
                else:
                    try:
                        parse(ecosystem, value)
                    except VersionError as error:
                        raise ValueError(f"{where}: {ident}: bad range: {error}") from None
            checked.append({key: value})
        # OSV schema: every range has at least one "introduced" event.
        if not any("introduced" in event for event in checked):
            raise ValueError(f"{where}: {ident}: range without an introduced event")
        if kind != "GIT":  # commit ranges cannot be matched against installed versions
            ranges.append(checked)
    versions = entry.get("versions") or []
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise ValueError(f"{where}: {ident}: versions is not a list of strings")
    data: dict[str, Any] = {"kind": "osv", "ranges": ranges, "versions": versions}
    specific = entry.get("ecosystem_specific")  # the rest of it is free-form (OSV schema)
    if isinstance(specific, dict) and isinstance(specific.get("urgency"), str):
        data["urgency"] = specific["urgency"]  # OSV's Debian records carry the tracker urgency here
    return ecosystem, normalise_package(ecosystem, name), json.dumps(data, separators=(",", ":"))


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
            entry = by_cve.setdefault(cve, {"description": _text(body.get("description")), "packages": {}})
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


def _decode(raw: bytes, where: str) -> Any:
    """The document in ``raw``, or an :class:`InputError` naming ``where``. JSON (the shared bounded
    loader) first: it is what the archives hold. A document that does not start as JSON does (an
    object or an array) is read as YAML, as OSV records may be written."""
    try:
        return load_json(raw, where=where)
    except InputError:
        if raw.lstrip()[:1] in (b"{", b"["):
            raise
    return _yaml(raw, where)


def _yaml(raw: bytes, where: str) -> Any:
    """A YAML document, bounded before libyaml sees it: its composer recurses in C for each nested
    node, so a document nested some 30,000 deep crashes the interpreter rather than raising. Block
    nesting costs a line of growing indentation per level (the size bound keeps it to a few thousand
    levels, which Python's recursion limit catches); flow nesting costs a byte per level and is
    counted here (brackets inside strings count too: an overestimate, never an underestimate)."""
    if len(raw) > _MAX_MEMBER:
        raise InputError(f"neither JSON nor a YAML document of at most {_MAX_MEMBER:,} bytes", where=where)
    depth = 0
    for match in _FLOW.finditer(raw):
        depth += 1 if match[0] in b"[{" else -1
        if depth > MAX_DEPTH:
            raise InputError(f"the YAML nests deeper than {MAX_DEPTH} levels", where=where)
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER)  # noqa: S506 - BaseLoader builds only str/list/dict
    except RecursionError:
        raise InputError("the YAML nests too deeply", where=where) from None
    except yaml.YAMLError as error:
        raise InputError(f"neither JSON nor YAML: {str(error).splitlines()[0]}", where=where) from None
    check_shape(data, where=where, max_values=_MAX_YAML_VALUES)
    return data


def _kind(data: Any) -> str | None:
    if isinstance(data, dict):
        if isinstance(data.get("vulnerabilities"), list) and "catalogVersion" in data:
            return "kev"
        if "affected" in data or ("id" in data and "modified" in data):
            return "osv"
        first = next(iter(data.values()), None) if data else None
        if isinstance(first, dict):
            inner = next(iter(first.values()), None)
            if isinstance(inner, dict) and "releases" in inner:
                return "tracker"
        return None
    if isinstance(data, list) and data and all(isinstance(item, dict) and "id" in item for item in data[:5]):
        return "osv-list"
    return None


# -- parallel parsing of large archives (see _Importer._parallel) ------------------------------------

_PARALLEL_MEMBERS = 5000  # below this, starting worker interpreters costs more than it saves
_TASK_MEMBERS = 2000
_MAX_WORKERS = 4
_WORKER: dict[str, zipfile.ZipFile] = {}  # the worker process's open archive


def _open_archive(path: str) -> None:
    """Worker initializer: open the archive once per worker (reading a large central directory
    again for every task would cost as much as parsing)."""
    _WORKER["archive"] = zipfile.ZipFile(path)  # open as long as the worker lives


def _parse_members(names: list[str]) -> list[tuple[str, Record | str | None]]:
    """Worker: for each member, ``("record", Record)``, ``("skip", reason)``, or ``("main", None)``
    for a member that is not a single OSV record (the main process handles it)."""
    archive = _WORKER["archive"]
    out: list[tuple[str, Record | str | None]] = []
    for name in names:
        where = f"{archive.filename}!{name}"
        raw = archive.read(name)
        try:
            data = _decode(raw, where)
        except InputError as error:
            out.append(("skip", error.diagnostic()))
            continue
        if _kind(data) != "osv":
            out.append(("main", None))
            continue
        try:
            out.append(("record", osv_record(data, raw, where)))
        except ValueError as error:
            out.append(("skip", str(error)))
    return out


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
            data = _decode(raw, str(path))
        except InputError as error:
            if top:
                raise
            self.counts.skip(error.diagnostic())
            return
        self.data(data, raw, str(path), top=top)

    def data(self, data: Any, raw: bytes, where: str, *, top: bool) -> None:
        kind = _kind(data)
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
                    if info.file_size > _MAX_MEMBER:
                        self.counts.skip(f"{path}!{info.filename}: larger than {_MAX_MEMBER} bytes")
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
            data = _decode(raw, where)
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
                initializer=_open_archive,
                initargs=(str(path),),
            ) as pool:
                names = [[info.filename for info in chunk] for chunk in chunks]
                for chunk, outcomes in zip(chunks, pool.map(_parse_members, names), strict=True):
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
