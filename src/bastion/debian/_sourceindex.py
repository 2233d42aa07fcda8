"""Source packages through the verified chain: ``Sources`` indices and the files of a ``.dsc``.

The chain is the one binary packages follow (:mod:`._repository`): the gpgv-verified ``InRelease``
lists the SHA256 and size of ``<component>/source/Sources.xz``; the ``Sources`` file lists, for each
source package, the ``.dsc`` and every file it names with their SHA256 and size (Debian Repository
Format, "Sources Indices", ``Checksums-Sha256``); each file is checked against that before it enters the
cache. The ``.dsc``'s own ``Checksums-Sha256`` must name the same files with the same digests and sizes,
so that ``dpkg-source``, which reads the ``.dsc``, unpacks exactly what the signed index vouched for.

A ``Sources`` file is read only as far as the one package asked for: each stanza's ``Package`` line is
matched first, and only that stanza is parsed with python-debian.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cmp_to_key
from pathlib import Path

from debian.deb822 import Deb822

from bastion.cache import Download, Fetcher
from bastion.debian._index import decompress
from bastion.debian._release import IndexFile
from bastion.debian._repository import Suite
from bastion.debian._version import compare_versions
from bastion.errors import InputError, IntegrityError

__all__ = ["SourceFile", "SourceRecord", "fetch_source", "find_source", "parse_dsc_files"]

# Preference order, as for Packages: smallest first; all are checked against the same signed list.
_COMPRESSIONS = (".xz", ".gz", "")
# A file name in a .dsc or Sources stanza: a plain name in the package's directory (no '/', no '..'),
# as dpkg-source itself requires (Dpkg::Source::Package, "is_acceptable_filename").
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_:-]*$")
_DIRECTORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_/-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: The most bytes a .dsc may have (bookworm's largest is under 100 KiB).
MAX_DSC_SIZE = 1 << 20
#: The most files one source package may list (a .dsc names an orig tarball, its components and
#: signatures, and a debian tarball or diff: a handful).
MAX_SOURCE_FILES = 64


@dataclass(frozen=True)
class SourceFile:
    """One file of a source package, as the signed ``Sources`` index lists it."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SourceRecord:
    """One source package version from a verified ``Sources`` index."""

    name: str
    version: str
    directory: str
    format: str
    files: tuple[SourceFile, ...]
    build_depends: str
    build_depends_arch: str
    build_depends_indep: str
    repository: str
    suite: str
    index_sha256: str  # the Sources file it was read from (itself vouched for by InRelease)

    @property
    def dsc(self) -> SourceFile:
        return next(f for f in self.files if f.name.endswith(".dsc"))

    def url(self, file: SourceFile) -> str:
        return f"{self.repository.rstrip('/')}/{self.directory}/{file.name}"

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.suite})"


def _pick_sources(suite: Suite, component: str) -> IndexFile:
    stem = f"{component}/source/Sources"
    for ext in _COMPRESSIONS:
        entry = suite.release.index(stem + ext)
        if entry is not None:
            return entry
    raise InputError(f"suite {suite.name} of {suite.base} has no {stem} (no deb-src)")


def find_source(suites: list[Suite], name: str, version: str | None, fetcher: Fetcher) -> SourceRecord:
    """The source package ``name`` (at ``version``, or the highest across ``suites``) from the verified
    ``Sources`` indices of every suite and component."""
    found: list[SourceRecord] = []
    for suite in suites:
        for component in suite.source.components:
            entry = _pick_sources(suite, component)
            directory = entry.path.rsplit("/", 1)[0]
            url = (
                f"{suite.base}/dists/{suite.name}/{directory}/by-hash/SHA256/{entry.sha256}"
                if suite.release.acquire_by_hash
                else f"{suite.base}/dists/{suite.name}/{entry.path}"
            )
            label = f"{suite.label} {entry.path}"
            path = fetcher.fetch(Download(url, entry.sha256, entry.size, label))
            text = decompress(path.read_bytes(), entry.path)
            found += parse_sources(text, name, where=label, repository=suite.base, suite=suite.name,
                                   index_sha256=entry.sha256)  # fmt: skip
    if version is not None:
        found = [r for r in found if r.version == version]
    if not found:
        at = f" version {version}" if version else ""
        raise InputError(f"source package {name}{at} is in none of the Sources indices of the suites")

    def newer_first(a: SourceRecord, b: SourceRecord) -> int:
        return compare_versions(b.version, a.version)

    return sorted(found, key=cmp_to_key(newer_first))[0]


def parse_sources(
    text: bytes, name: str, *, where: str, repository: str, suite: str, index_sha256: str
) -> list[SourceRecord]:
    """Every stanza of the ``Sources`` file ``text`` for the source package ``name``."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"Sources index is not UTF-8: {exc}", where=where) from None
    records = []
    start = re.compile(rf"^Package:[ \t]*{re.escape(name)}[ \t]*$", re.MULTILINE)
    for match in start.finditer(decoded):
        head = decoded.rfind("\n\n", 0, match.start())
        tail = decoded.find("\n\n", match.end())
        stanza = decoded[head + 2 if head >= 0 else 0 : tail if tail >= 0 else len(decoded)]
        records.append(_record(Deb822(stanza), where, repository, suite, index_sha256))
    return records


def _record(para: Deb822, where: str, repository: str, suite: str, index_sha256: str) -> SourceRecord:
    name = str(para.get("Package", ""))
    where = f"{where} (source {name})"
    missing = [f for f in ("Version", "Directory", "Checksums-Sha256") if f not in para]
    if missing:
        raise IntegrityError(f"stanza lacks {', '.join(missing)}", where=where)
    directory = str(para["Directory"]).strip()
    if not _DIRECTORY.match(directory) or ".." in directory.split("/"):
        raise IntegrityError(f"Directory {directory!r} is not a plain path in the archive", where=where)
    files = _checksums(para, where)
    dscs = [f for f in files if f.name.endswith(".dsc")]
    if len(dscs) != 1:
        raise IntegrityError(f"stanza lists {len(dscs)} .dsc files, not one", where=where)
    return SourceRecord(
        name=name, version=str(para["Version"]).strip(), directory=directory,
        format=str(para.get("Format", "1.0")).strip(), files=files,
        build_depends=_field(para, "Build-Depends"), build_depends_arch=_field(para, "Build-Depends-Arch"),
        build_depends_indep=_field(para, "Build-Depends-Indep"),
        repository=repository, suite=suite, index_sha256=index_sha256,
    )  # fmt: skip


def _field(para: Deb822, key: str) -> str:
    return " ".join(str(para.get(key, "")).split())


def _checksums(para: Deb822, where: str) -> tuple[SourceFile, ...]:
    """The ``Checksums-Sha256`` field (Policy §5.6.24): one ``<sha256> <size> <name>`` line per file."""
    files: dict[str, SourceFile] = {}
    for line in str(para.get("Checksums-Sha256", "")).splitlines():
        words = line.split()
        if not words:
            continue
        if len(words) != 3 or not _HEX64.match(words[0].lower()) or not words[1].isdigit():
            raise IntegrityError(f"malformed Checksums-Sha256 line {line.strip()!r}", where=where)
        if not _FILE_NAME.match(words[2]) or words[2] in files:
            raise IntegrityError(f"file name {words[2]!r} is not a plain, unique name", where=where)
        files[words[2]] = SourceFile(words[2], words[0].lower(), int(words[1]))
    if not files:
        raise IntegrityError("no Checksums-Sha256 files", where=where)
    if len(files) > MAX_SOURCE_FILES:
        raise IntegrityError(f"{len(files)} files, more than {MAX_SOURCE_FILES}", where=where)
    return tuple(sorted(files.values(), key=lambda f: f.name))


def parse_dsc_files(data: bytes, *, where: str) -> tuple[str, str, tuple[SourceFile, ...]]:
    """The ``Source``, ``Version`` and ``Checksums-Sha256`` files of a ``.dsc`` (Policy §5.4). Its
    OpenPGP signature, if any, is not what Bastion trusts: the ``Sources`` index's digest of it is."""
    if len(data) > MAX_DSC_SIZE:
        raise IntegrityError(f".dsc is {len(data)} bytes, more than {MAX_DSC_SIZE}", where=where)
    try:
        para = Deb822(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"malformed .dsc: {exc}", where=where) from None
    return str(para.get("Source", "")).strip(), str(para.get("Version", "")).strip(), _checksums(para, where)


def fetch_source(record: SourceRecord, fetcher: Fetcher) -> dict[str, Path]:
    """Fetch the ``.dsc`` and every file it names into the cache, each checked by SHA256 and size against
    the signed ``Sources`` index; returns each file's cache path by name. Raises
    :class:`IntegrityError` when the ``.dsc`` disagrees with the index."""
    label = f"source {record.name} {record.version}"
    downloads = [Download(record.url(f), f.sha256, f.size, f"{label}: {f.name}") for f in record.files]
    paths = fetcher.fetch_all(downloads, description=f"Fetching {record.name} {record.version} source")
    by_name = {f.name: path for f, path in zip(record.files, paths, strict=True)}
    dsc = record.dsc
    source, version, listed = parse_dsc_files(by_name[dsc.name].read_bytes(), where=f"{label}: {dsc.name}")
    if (source, version) != (record.name, record.version):
        raise IntegrityError(f"the .dsc is for {source} {version}", where=f"{label}: {dsc.name}")
    # The .dsc and the signed index must name the same files, byte for byte (the index also lists the
    # .dsc itself, which the .dsc cannot).
    expected = {f for f in record.files if f.name != dsc.name}
    if set(listed) != expected:
        differ = sorted({f.name for f in set(listed) ^ expected})
        raise IntegrityError(
            f"the .dsc's Checksums-Sha256 disagrees with the Sources index on {', '.join(differ)}",
            where=f"{label}: {dsc.name}",
        )
    return by_name
