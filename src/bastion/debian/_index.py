"""Packages indices: streaming parse, and the parsed-index cache that makes warm resolution fast.

A bookworm ``main/binary-amd64/Packages`` file is ~50 MB decompressed and lists ~63,000 packages, of
which the resolver touches a few hundred. So a verified index is decompressed and parsed a chunk at a
time (never held whole, decompressed or parsed: the resolver needs ~450 bytes of each ~800-byte
paragraph), written once to the cache named by the SHA256 of the signed compressed file it came from,
and read back through a read-only memory map: only the pages of the packages looked up are ever read.

The cache file (``<sha256>.v5.idx``) is one JSON header line, then the records. The header lists the
names in file order with the end offset of each name's records, which package names each virtual name
is provided by (Policy §7.5), and the ``Essential: yes`` names (Policy §3.8); each record is one line,
its fields joined by ``_SEP``. JSON and plain text rather than pickle: reading it can never run code,
even if someone tampers with the cache directory, and a header that does not describe its file is a
cache miss.
"""

from __future__ import annotations

import io
import itertools
import json
import lzma
import os
import re
import tempfile
import weakref
import zlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cmp_to_key
from pathlib import Path
from typing import BinaryIO

from bastion._atomic import atomic_file
from bastion.debian._version import compare_versions, parse_relations
from bastion.errors import IntegrityError

# Bump when the parsed form changes, so stale parsed caches are ignored.
_PARSED_FORMAT = 5

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
_SEP = "\x1f"  # ASCII unit separator: never in a Packages field (deb822 is text without controls)

_CHUNK = 1 << 20  # bytes of compressed input read, and of decompressed output produced, at a time
# The most a Packages file may decompress to: bookworm's largest is ~50 MB; a file that expands past
# this is refused rather than parsed for ever (the signed size bounds only the compressed file).
MAX_PACKAGES_SIZE = 1 << 30


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


class _Plain:
    """A no-op decompressor for an uncompressed index, with the interface of the two below."""

    unconsumed_tail = b""
    needs_input = True

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return data


def _decompressed_chunks(source: Path, name: str) -> Iterator[bytes]:
    """The decompressed content of ``source`` (compressed as ``name``'s suffix says), at most
    ``_CHUNK`` bytes at a time and ``MAX_PACKAGES_SIZE`` in all."""
    if name.endswith(".xz"):
        xz = lzma.LZMADecompressor()
        inflater: lzma.LZMADecompressor | zlib._Decompress | _Plain = xz
    elif name.endswith(".gz"):
        inflater = zlib.decompressobj(wbits=47)
    else:
        inflater = _Plain()
    total = 0
    try:
        with source.open("rb") as f:
            while data := f.read(_CHUNK):
                while True:
                    # max_length bounds each output chunk: what it did not consume stays inside the
                    # xz decompressor (needs_input false) or in zlib's unconsumed_tail.
                    chunk = inflater.decompress(data, _CHUNK)
                    total += len(chunk)
                    if total > MAX_PACKAGES_SIZE:
                        raise IntegrityError(f"{name} decompresses to more than {MAX_PACKAGES_SIZE} bytes")
                    if chunk:
                        yield chunk
                    if isinstance(inflater, lzma.LZMADecompressor):
                        if inflater.needs_input or inflater.eof:
                            break
                        data = b""
                    elif inflater.unconsumed_tail:
                        data = inflater.unconsumed_tail
                    else:
                        break
    except (lzma.LZMAError, zlib.error) as exc:
        raise IntegrityError(f"cannot decompress {name}: {exc}") from None


def _rows(chunks: Iterable[bytes], *, where: str) -> Iterator[list[str]]:
    """Rows of the fields in ``_FIELDS``, one per package, from a Packages file given in chunks. Each
    chunk is cut after its last newline, so field lines are matched whole and UTF-8 decoded at line
    boundaries; only one chunk and one row are held at a time."""
    current: list[str] | None = None
    rest = b""

    def finish(row: list[str] | None) -> Iterator[list[str]]:
        if row is None:
            return
        if not (row[1] and row[2] and row[7] and row[8] and row[9]):
            raise IntegrityError(
                f"package {row[0]!r} lacks Version, Architecture, Filename, Size or SHA256", where=where
            )
        if not row[8].isdigit() or any(_SEP in field for field in row):
            raise IntegrityError(
                f"package {row[0]!r} has a malformed Size or a control character", where=where
            )
        yield row

    def lines(data: bytes) -> Iterator[re.Match[str]]:
        try:
            return _FIELD_LINE.finditer(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise IntegrityError(f"Packages index is not UTF-8: {exc}", where=where) from None

    for chunk in itertools.chain(chunks, [b"\n"]):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        for match in lines(data[:cut]):
            key = match.group(1)
            if key == "Package":
                yield from finish(current)
                current = [""] * len(_FIELDS)
            elif current is None:
                raise IntegrityError(f"field {key} before any Package field", where=where)
            current[_FIELD_INDEX[key]] = match.group(2).strip()
    yield from finish(current)


def parse_packages(text: bytes, *, where: str) -> list[list[str]]:
    """Parse a Packages file into rows of the fields in ``_FIELDS``."""
    return list(_rows([text], where=where))


class ParsedIndex:
    """One verified Packages file in the cache's format (module docstring): each package's versions
    by name, split into fields only when the resolver asks for that name, and which names each virtual
    package is provided by (Policy §7.5), computed once when the file is first parsed."""

    def __init__(
        self, header: dict[str, list[str]], ends: array[int], read: Callable[[int, int], bytes]
    ) -> None:
        self._read = read  # (offset, length) -> bytes, offsets counted from the first record
        self._ends = ends
        self._position = {name: i for i, name in enumerate(header["names"])}
        self.provides: dict[str, list[str]] = header["provides"]  # type: ignore[assignment]
        self.essential: list[str] = header["essential"]

    def names(self) -> Iterable[str]:
        return self._position.keys()

    def packed(self, name: str) -> list[str]:
        """The records of ``name``, each its fields joined by ``_SEP``."""
        i = self._position.get(name)
        if i is None:
            return []
        start = self._ends[i - 1] if i else 0
        try:
            return self._read(start, self._ends[i] - start).decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise IntegrityError(f"the parsed index cache's records of {name!r} are not UTF-8") from None

    @classmethod
    def from_rows(cls, rows: Iterable[list[str]]) -> ParsedIndex:
        side, out = io.BytesIO(), io.BytesIO()
        _write_parsed(rows, side, out)
        data = out.getvalue()
        base = data.find(b"\n") + 1
        return _parse_header(
            data[:base], len(data) - base, lambda start, n: data[base + start : base + start + n]
        )


def _write_parsed(rows: Iterable[list[str]], side: BinaryIO, out: BinaryIO) -> None:
    """Write ``rows`` to ``out`` in the cache's format. Each record goes to ``side`` as it is parsed
    (only its offset and its name's position are kept), then is copied to ``out`` after the header,
    grouped by name: dak writes Packages sorted by name, so that copy is in order, but an index
    listing one name in several places is still grouped correctly."""
    position: dict[str, int] = {}
    provides: dict[str, list[str]] = defaultdict(list)
    essential: set[str] = set()
    starts, owner = array("Q", [0]), array("L")
    for row in rows:
        record = (_SEP.join(row) + "\n").encode("utf-8")
        side.write(record)
        starts.append(starts[-1] + len(record))
        owner.append(position.setdefault(row[0], len(position)))
        if row[4]:
            # Provides lists plain names, optionally "(= version)": a split is enough here and
            # ~10x faster than full relation parsing over ~60,000 rows.
            for item in row[4].split(","):
                virtual = item.split("(", 1)[0].split(":", 1)[0].strip()
                if row[0] not in provides[virtual]:
                    provides[virtual].append(row[0])
        if row[11] == "yes":
            essential.add(row[0])
    # Stable: a name's records keep their order. dak's indices are already grouped: no list then.
    grouped = all(owner[i] <= owner[i + 1] for i in range(len(owner) - 1))
    order = range(len(owner)) if grouped else sorted(range(len(owner)), key=owner.__getitem__)
    ends = [0] * len(position)
    offset = 0
    for i in order:
        offset += starts[i + 1] - starts[i]
        ends[owner[i]] = offset
    header = {"names": list(position), "ends": ends, "provides": provides, "essential": sorted(essential)}
    out.write(json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n")
    del header, ends, position
    # Copied a run of adjacent records at a time, read in chunks (not mapped: the pages read would
    # count as this process's memory until the whole copy is done).
    if grouped:
        _copy(side, out, 0, starts[-1])
        return
    run_start = run_end = 0
    for i in order:
        if starts[i] != run_end:
            _copy(side, out, run_start, run_end)
            run_start = starts[i]
        run_end = starts[i + 1]
    _copy(side, out, run_start, run_end)


def _copy(side: BinaryIO, out: BinaryIO, start: int, end: int) -> None:
    side.seek(start)
    while start < end:
        data = side.read(min(_CHUNK, end - start))
        if not data:
            raise IntegrityError("the parsed index's records were truncated while written")
        out.write(data)
        start += len(data)


def _parse_header(line: bytes, size: int, read: Callable[[int, int], bytes]) -> ParsedIndex:
    """A cache file from its header ``line``, the ``size`` of the records after it, and how to read them."""
    header = json.loads(line)
    if not (
        isinstance(header, dict)
        and isinstance(names := header.get("names"), list)
        and isinstance(ends := header.get("ends"), list)
        and isinstance(header.get("provides"), dict)
        and isinstance(header.get("essential"), list)
        and len(names) == len(ends)
        and all(isinstance(end, int) and end >= 0 for end in ends)
        and all(a <= b for a, b in zip([0, *ends], ends, strict=False))
        and (ends[-1] if ends else 0) == size
    ):
        raise ValueError("the header does not describe the records")
    return ParsedIndex(header, array("Q", ends), read)


def _cache_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / f"{sha256}.v{_PARSED_FORMAT}.idx"


def load_parsed(cache_dir: Path, sha256: str) -> ParsedIndex | None:
    """The parsed form of the index whose compressed file has ``sha256``, its header read from the
    cache and its records left there, each read when asked for (not mapped: the resolver reads a few
    hundred scattered records, and read-ahead into a mapping would only fill memory); None when it is
    not there or is not a well-formed cache file (parse the index again)."""
    try:
        f = _cache_path(cache_dir, sha256).open("rb")
    except OSError:
        return None
    try:
        line = f.readline()
        base, fd = len(line), f.fileno()
        parsed = _parse_header(
            line, os.fstat(fd).st_size - base, lambda start, n: os.pread(fd, n, base + start)
        )
    except (OSError, ValueError):
        f.close()
        return None
    weakref.finalize(parsed, f.close)
    return parsed


def parse_to_cache(source: Path, name: str, cache_dir: Path, sha256: str, *, where: str) -> ParsedIndex:
    """Parse the verified Packages file ``source`` (compressed as ``name`` says) into the cache and
    return it mapped from there: the file is streamed, so neither it nor its parsed form is held whole."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = _cache_path(cache_dir, sha256)
    # Not synced: losing it to a crash only costs parsing the Packages file again.
    with tempfile.TemporaryFile(dir=cache_dir) as side, atomic_file(path, durable=False) as out:
        _write_parsed(_rows(_decompressed_chunks(source, name), where=where), side, out)
    parsed = load_parsed(cache_dir, sha256)
    if parsed is None:
        raise IntegrityError(f"cannot read back the parsed index {path}")
    return parsed


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
        return len({name for parsed, _, _ in self._files for name in parsed.names()})

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
                    for row in (packed.split(_SEP) for packed in parsed.packed(name))
                    if row[2] in (arch, "all")
                ]
            )
            self._records[name] = records
        return records

    def essential(self) -> list[str]:
        """The names of every ``Essential: yes`` package (Policy §3.8), which a build root must hold."""
        return sorted({name for parsed, _, _ in self._files for name in parsed.essential})

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
    if len(r) != len(_FIELDS) or not r[8].isdigit():
        raise IntegrityError(f"the parsed index cache's record of {r[0]!r} is malformed; remove the cache")
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
