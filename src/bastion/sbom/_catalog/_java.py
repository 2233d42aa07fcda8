"""Java archives: ``*.jar``, ``*.war``, ``*.ear`` (any regular file with those suffixes), read with
:mod:`zipfile`, and the archives nested inside them (``WEB-INF/lib/*.jar``, fat jars), recursively up
to depth :data:`MAX_DEPTH`, each nested archive at most :data:`MAX_NESTED_SIZE` bytes uncompressed.

Per archive:

* every ``META-INF/maven/<group>/<artifact>/pom.properties`` (``groupId``, ``artifactId``,
  ``version``) is a package, ``pkg:maven/<group>/<artifact>@<version>`` — a shaded jar carries one for
  each library it swallowed;
* with none, ``META-INF/MANIFEST.MF`` (JAR File Specification "Manifest Specification"):
  ``Implementation-Title``/``Bundle-SymbolicName`` and ``Implementation-Version``/``Bundle-Version``,
  the group from ``Implementation-Vendor-Id`` (or the symbolic name's prefix); with no version there,
  the file name's ``<name>-<version>.jar``; with no version at all, nothing is reported.

The location of a nested archive is ``<outer path>:<entry>`` (``/opt/app.war:WEB-INF/lib/x.jar``), on
the layer of the outer file.

A zip is a list of entries (its central directory) pointing at data anywhere in the file, so a few
kilobytes can describe gigabytes: thousands of entries naming one deflated member, or jars nested in
jars. Hence, per archive found in the image (nested ones included), at most :data:`MAX_ENTRIES`
entries in any one zip, at most :data:`MAX_ARCHIVE_BYTES` decompressed in all, and no two entries whose
data overlap (APPNOTE.TXT 4.3.6: each entry is its own local header and data; no honest writer shares
them). An archive that breaks these is refused (:class:`~bastion.errors.InputError`, naming it).
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from typing import IO

from packageurl import PackageURL

from bastion.errors import InputError
from bastion.image import FileKind, ImageTarget
from bastion.sbom._catalog._base import location
from bastion.sbom._model import Location, Package, PackageType

NAME = "java-archive"
MAX_DEPTH = 3
MAX_NESTED_SIZE = 64 * 1024 * 1024
#: Entries one zip may list: fat jars hold tens of thousands.
MAX_ENTRIES = 200_000
#: Bytes decompressed for one archive of the image and everything nested in it.
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
_MAX_TEXT = 1024 * 1024  # pom.properties and MANIFEST.MF read at most this large
_LOCAL_HEADER = 30  # APPNOTE.TXT 4.3.7: the fixed part of a local file header
_SUFFIXES = (".jar", ".war", ".ear")
_POM = re.compile(r"META-INF/maven/[^/]+/[^/]+/pom\.properties")
_FILE_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.+-]*)$")


class JavaArchiveCataloger:
    name = NAME

    def catalog(self, target: ImageTarget) -> list[Package]:
        packages: list[Package] = []
        for info in target.walk():
            if info.kind is not FileKind.FILE or not info.path.lower().endswith(_SUFFIXES):
                continue
            where = location(target, info.path)
            budget = _Budget(f"{target.name}:{info.path}")
            try:
                with target.open(info.path) as f:
                    packages += _archive(f, info.path, where, 0, budget)
            except OSError:
                continue
        return packages


class _Budget:
    """What one archive of the image (with everything nested in it) may still decompress."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.left = MAX_ARCHIVE_BYTES

    def read(self, zf: zipfile.ZipFile, member: zipfile.ZipInfo, path: str) -> bytes:
        # zipfile never returns more than the declared file_size (a longer stream fails its CRC).
        self.left -= member.file_size
        if self.left < 0:
            raise InputError(
                f"{path}: decompresses to more than {MAX_ARCHIVE_BYTES:,} bytes in all (a zip bomb?)",
                where=self.where,
            )
        return zf.read(member)


def _check_layout(members: list[zipfile.ZipInfo], path: str, budget: _Budget) -> None:
    """Refuse a zip whose entries are too many or share their data (see the module docs)."""
    if len(members) > MAX_ENTRIES:
        raise InputError(f"{path}: {len(members):,} entries, more than {MAX_ENTRIES:,}", where=budget.where)
    spans = sorted((m.header_offset, m.header_offset + _LOCAL_HEADER + m.compress_size) for m in members)
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        # The span counted is the least an entry can take (no name, no extra field), so entries
        # written one after another are never flagged, and one that starts inside another is.
        if next_start < end:
            raise InputError(
                f"{path}: entries at offsets {start} and {next_start} overlap (a zip bomb?)",
                where=budget.where,
            )


def _archive(f: IO[bytes], path: str, where: Location, depth: int, budget: _Budget) -> list[Package]:
    try:
        with zipfile.ZipFile(f) as zf:
            members = zf.infolist()
            _check_layout(members, path, budget)
            packages = _described(zf, members, path, where, budget)
            if depth >= MAX_DEPTH:
                return packages
            for member in members:
                if member.is_dir() or not member.filename.lower().endswith(_SUFFIXES):
                    continue
                if member.file_size > MAX_NESTED_SIZE:
                    continue
                nested = Location(f"{path}:{member.filename}", where.layer_digest, where.layer_index)
                data = budget.read(zf, member, nested.path)
                packages += _archive(io.BytesIO(data), nested.path, nested, depth + 1, budget)
            return packages
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError, OSError):
        return []  # not a zip, or a damaged or encrypted one: nothing can be said about it


def _described(
    zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], path: str, where: Location, budget: _Budget
) -> list[Package]:
    packages = []
    for member in members:
        if _POM.fullmatch(member.filename) and member.file_size < _MAX_TEXT:
            props = _properties(budget.read(zf, member, path).decode("utf-8", "replace"))
            group, artifact, version = props.get("groupId"), props.get("artifactId"), props.get("version")
            if group and artifact and version:
                packages.append(_package(group, artifact, version, where))
    if packages:
        return packages
    manifest = next((m for m in members if m.filename == "META-INF/MANIFEST.MF"), None)
    attributes = (
        _manifest(budget.read(zf, manifest, path).decode("utf-8", "replace"))
        if manifest and manifest.file_size < _MAX_TEXT
        else {}
    )
    symbolic = attributes.get("Bundle-SymbolicName", "").split(";", 1)[0].strip()
    stem = path.rsplit("/", 1)[-1].rsplit(":", 1)[-1].rsplit(".", 1)[0]
    from_file = _FILE_VERSION.match(stem)
    artifact = (
        attributes.get("Implementation-Title") or symbolic or (from_file.group("name") if from_file else stem)
    )
    version = (
        attributes.get("Implementation-Version")
        or attributes.get("Bundle-Version")
        or (from_file.group("version") if from_file else "")
    )
    if not version:
        return []
    group = attributes.get("Implementation-Vendor-Id") or (symbolic.rpartition(".")[0] if symbolic else "")
    return [_package(group or None, artifact, version, where)]


def _package(group: str | None, artifact: str, version: str, where: Location) -> Package:
    return Package(
        type=PackageType.MAVEN,
        name=artifact,
        version=version,
        purl=PackageURL("maven", group, artifact, version).to_string(),
        namespace=group,
        locations=[where],
        found_by=NAME,
    )


def _properties(text: str) -> dict[str, str]:
    """java.util.Properties, the subset Maven writes: ``key=value`` lines, ``#`` comments."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, _, value = _kv(line)
        out[key] = value
    return out


def _kv(line: str) -> tuple[str, str, str]:
    match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
    return (match.group(1), "", match.group(2).strip()) if match else (line, "", "")


def _manifest(text: str) -> dict[str, str]:
    """The main section of a manifest: ``Name: value`` lines, continuation lines start with a space."""
    out: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last is not None:
            out[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            out[last] = value.strip()
    return out
