"""Packages indices: parsing, and the parsed-index cache that makes warm resolution fast.

A bookworm ``main/binary-amd64/Packages`` file is ~50 MB and takes ~0.6 s just to decompress, so
each verified index is parsed once into the fields Bastion uses and kept as JSON in the cache,
named by the SHA256 of the signed compressed file it came from. JSON rather than pickle: loading
it can never run code, even if someone tampers with the cache directory.
"""

from __future__ import annotations

import json
import lzma
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass
from functools import cmp_to_key
from pathlib import Path

from bastion._atomic import atomic_write
from bastion.debian._version import compare_versions, parse_relations
from bastion.errors import IntegrityError

# Bump when the parsed form changes, so stale parsed caches are ignored.
_PARSED_FORMAT = 4

_FIELDS = (
    "Package",
    "Version",
    "Architecture",
    "Source",
    "Provides",
    "Pre-Depends",
    "Depends",
    "Filename",
    "Size",
    "SHA256",
    "Multi-Arch",
    "Essential",
    "Priority",
    "Maintainer",
)
_FIELD_INDEX = {name: i for i, name in enumerate(_FIELDS)}
# Field lines start at the beginning of a line; continuation lines start with a space (Policy §5.1),
# so this never matches inside a Description.
_FIELD_LINE = re.compile(r"^(" + "|".join(re.escape(f) for f in _FIELDS) + r"):[ \t]*(.*)$", re.MULTILINE)
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


@dataclass(frozen=True)
class PackageRecord:
    """One binary package version as listed in a Packages index."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    provides: str
    pre_depends: str
    depends: str
    filename: str
    size: int
    sha256: str
    multi_arch: str
    essential: bool
    priority: str
    maintainer: str
    repository: str  # base URI of the mirror it is fetched from
    suite: str

    @property
    def url(self) -> str:
        return f"{self.repository.rstrip('/')}/{self.filename}"

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.architecture}, {self.suite})"


def decompress(data: bytes, path: str) -> bytes:
    try:
        if path.endswith(".xz"):
            return lzma.decompress(data)
        if path.endswith(".gz"):
            return zlib.decompress(data, wbits=47)
    except (lzma.LZMAError, zlib.error) as exc:
        raise IntegrityError(f"cannot decompress {path}: {exc}") from None
    return data


def parse_packages(text: bytes, *, where: str) -> list[list[str]]:
    """Parse a Packages file into rows of the fields in ``_FIELDS``."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"Packages index is not UTF-8: {exc}", where=where) from None
    rows: list[list[str]] = []
    current: list[str] | None = None
    for match in _FIELD_LINE.finditer(decoded):
        key = match.group(1)
        if key == "Package":
            current = [""] * len(_FIELDS)
            rows.append(current)
        elif current is None:
            raise IntegrityError(f"field {key} before any Package field", where=where)
        current[_FIELD_INDEX[key]] = match.group(2).strip()
    for row in rows:
        if not (row[1] and row[2] and row[7] and row[8] and row[9]):
            raise IntegrityError(
                f"package {row[0]!r} lacks Version, Architecture, Filename, Size or SHA256", where=where
            )
    return rows


_SEP = "\x1f"  # ASCII unit separator: never in a Packages field (deb822 is text without controls)


@dataclass(frozen=True)
class ParsedIndex:
    """One verified Packages file, grouped for lookup: each package's versions by name (fields joined
    by ``_SEP``, split only when the resolver asks for that name), and which names each virtual
    package is provided by (Policy §7.5), computed once when the file is first parsed."""

    rows: dict[str, list[str]]
    provides: dict[str, list[str]]

    @classmethod
    def from_rows(cls, rows: list[list[str]]) -> ParsedIndex:
        by_name: dict[str, list[str]] = defaultdict(list)
        provides: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            if any(_SEP in field for field in row):
                raise IntegrityError(f"package {row[0]!r} has a control character in a field")
            by_name[row[0]].append(_SEP.join(row))
            if row[4]:
                # Provides lists plain names, optionally "(= version)": a split is enough here and
                # ~10x faster than full relation parsing over ~60,000 rows.
                for item in row[4].split(","):
                    virtual = item.split("(", 1)[0].split(":", 1)[0].strip()
                    if row[0] not in provides[virtual]:
                        provides[virtual].append(row[0])
        return cls(dict(by_name), dict(provides))


def load_parsed(cache_dir: Path, sha256: str) -> ParsedIndex | None:
    path = cache_dir / f"{sha256}.v{_PARSED_FORMAT}.json"
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("rows"), dict)
        and isinstance(data.get("provides"), dict)
    ):
        return None
    return ParsedIndex(data["rows"], data["provides"])


def store_parsed(cache_dir: Path, sha256: str, parsed: ParsedIndex) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"rows": parsed.rows, "provides": parsed.provides}, separators=(",", ":"))
    # Not synced: losing it to a crash only costs parsing the Packages file again.
    atomic_write(cache_dir / f"{sha256}.v{_PARSED_FORMAT}.json", data.encode("utf-8"), durable=False)


class PackageIndex:
    """Every candidate package of one architecture, across all configured suites.

    Each Packages file stays as parsed (:class:`ParsedIndex`); a name is looked up in each file and
    turned into :class:`PackageRecord` only when the resolver asks for it: it touches a few hundred
    of ~60,000 packages, so merging whole files up front would be most of the work.
    """

    def __init__(self, architecture: str) -> None:
        self.architecture = architecture
        self._files: list[tuple[ParsedIndex, str, str]] = []
        self._records: dict[str, list[PackageRecord]] = {}

    def __len__(self) -> int:
        return len({name for parsed, _, _ in self._files for name in parsed.rows})

    def add(self, parsed: ParsedIndex, repository: str, suite: str) -> None:
        self._files.append((parsed, repository, suite))
        self._records.clear()

    def add_rows(self, rows: list[list[str]], repository: str, suite: str) -> None:
        self.add(ParsedIndex.from_rows(rows), repository, suite)

    def candidates(self, name: str) -> list[PackageRecord]:
        """All versions of a real package, highest first (apt's default: the highest version wins)."""
        records = self._records.get(name)
        if records is None:
            arch = self.architecture
            records = _sort_desc(
                [
                    _record(row, repository, suite)
                    for parsed, repository, suite in self._files
                    for row in (packed.split(_SEP) for packed in parsed.rows.get(name, ()))
                    if row[2] in (arch, "all")
                ]
            )
            self._records[name] = records
        return records

    def essential(self) -> list[str]:
        """The names of every ``Essential: yes`` package (Policy §3.8), which a build root must hold."""
        column = _FIELD_INDEX["Essential"]
        return sorted(
            {
                name
                for parsed, _, _ in self._files
                for name, rows in parsed.rows.items()
                if any(packed.split(_SEP)[column] == "yes" for packed in rows)
            }
        )

    def providers(self, virtual: str) -> list[tuple[PackageRecord, str | None]]:
        """Packages whose Provides names ``virtual``, with the provided version if any (Policy §7.5)."""
        names = [name for parsed, _, _ in self._files for name in parsed.provides.get(virtual, ())]
        result: list[tuple[PackageRecord, str | None]] = []
        seen: set[str] = set()
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            for record in self.candidates(name):
                provides, provided = _provided_version(record, virtual, self.architecture)
                if provides:
                    result.append((record, provided))
        return result


def _provided_version(record: PackageRecord, virtual: str, arch: str) -> tuple[bool, str | None]:
    """Whether ``record`` provides ``virtual``, and at which version (None: unversioned)."""
    for group in parse_relations(record.provides, arch) if record.provides else ():
        for rel in group:
            if rel.name == virtual:
                return True, (rel.version if rel.operator == "=" else None)
    return False, None


def _record(r: list[str], repository: str, suite: str) -> PackageRecord:
    source, source_version = r[0], r[1]
    if r[3]:
        m = _SOURCE.match(r[3])
        if m:
            source, source_version = m.group(1), m.group(2) or r[1]
    return PackageRecord(
        name=r[0], version=r[1], architecture=r[2], source=source, source_version=source_version,
        provides=r[4], pre_depends=r[5], depends=r[6], filename=r[7], size=int(r[8]),
        sha256=r[9].lower(), multi_arch=r[10], essential=r[11] == "yes", priority=r[12],
        maintainer=r[13], repository=repository, suite=suite,
    )  # fmt: skip


def _sort_desc(records: list[PackageRecord]) -> list[PackageRecord]:
    if len(records) < 2:
        return records

    def newer_first(a: PackageRecord, b: PackageRecord) -> int:
        return compare_versions(b.version, a.version)

    return sorted(records, key=cmp_to_key(newer_first))
