"""Parsing one OSV record, and the worker processes that parse a large archive's members.

Kept apart from the database layer so that a spawned worker imports only what parsing needs (not
SQLAlchemy): each worker of an import starts a fresh interpreter (see ``_Importer._parallel``).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from typing import Any

import yaml

from bastion.debian import is_debian_version
from bastion.documents import MAX_DEPTH, check_shape, load_json
from bastion.errors import InputError
from bastion.vuln._records import Record
from bastion.vuln._versions import (
    VersionError,
    debian_release,
    is_known_ecosystem,
    normalise_package,
    parse,
)

__all__ = ["MAX_MEMBER", "decode", "kind", "open_archive", "osv_record", "parse_members", "text"]

MAX_MEMBER = 32 * 1024 * 1024  # one OSV record in a zip; larger is not a record (zip bomb guard)
_RANGE_EVENTS = ("introduced", "fixed", "last_affected", "limit")
#: A YAML document may share nodes (anchors and aliases), so a small file can stand for a huge tree
#: ("billion laughs"); one OSV record holds a few thousand values.
_MAX_YAML_VALUES = 1_000_000
_FLOW = re.compile(rb"[\[\]{}]")  # YAML flow collections open and close
_YAML_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # all scalars stay strings
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per row
_WORKER: dict[str, zipfile.ZipFile] = {}  # the worker process's open archive


def text(value: Any) -> str:
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
        published=text(data.get("published")) or None,
        summary=text(data.get("summary")) or text(data.get("details")).split("\n", 1)[0][:300],
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
    release = debian_release(ecosystem)
    debian = release is not None
    if debian:
        ecosystem = f"Debian:{release}"
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
    return ecosystem, normalise_package(ecosystem, name), _COMPACT_JSON(data)


def decode(raw: bytes, where: str) -> Any:
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
    if len(raw) > MAX_MEMBER:
        raise InputError(f"neither JSON nor a YAML document of at most {MAX_MEMBER:,} bytes", where=where)
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


def kind(data: Any) -> str | None:
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


def open_archive(path: str) -> None:
    """Worker initializer: open the archive once per worker (reading a large central directory
    again for every task would cost as much as parsing)."""
    _WORKER["archive"] = zipfile.ZipFile(path)  # open as long as the worker lives


def parse_members(names: list[str]) -> list[tuple[str, Record | str | None]]:
    """Worker: for each member, ``("record", Record)``, ``("skip", reason)``, or ``("main", None)``
    for a member that is not a single OSV record (the main process handles it)."""
    archive = _WORKER["archive"]
    out: list[tuple[str, Record | str | None]] = []
    for name in names:
        where = f"{archive.filename}!{name}"
        raw = archive.read(name)
        try:
            data = decode(raw, where)
        except InputError as error:
            out.append(("skip", error.diagnostic()))
            continue
        if kind(data) != "osv":
            out.append(("main", None))
            continue
        try:
            out.append(("record", osv_record(data, raw, where)))
        except ValueError as error:
            out.append(("skip", str(error)))
    return out
