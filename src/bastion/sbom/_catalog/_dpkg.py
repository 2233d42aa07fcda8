"""Debian packages from the dpkg database: ``/var/lib/dpkg/status`` and ``/var/lib/dpkg/status.d/``.

* ``status`` (deb-status(5)): only paragraphs whose ``Status`` says the package is ``installed``
  (``install ok installed``, ``hold ok installed``); half-installed or removed ones are not in the image.
* ``status.d/<name>`` (Bastion runtime images, Google distroless): one control paragraph per file, no
  ``Status`` field (the package is there because the file is). ``<name>.md5sums`` files, and any file
  whose lines are md5sums, are the package's file lists, not packages.

Files (directories excepted): ``info/<name>.list`` or ``info/<name>:<arch>.list`` (dpkg database), else
``status.d/<name>.md5sums`` or ``info/<name>.md5sums`` (paths relative to the root). Paths are
recorded as the image resolves them (``/bin/ls`` is ``/usr/bin/ls`` when ``/bin`` links to
``usr/bin``, DEP 17) and only when present: the SBOM describes what the image holds, not what the
package once shipped (a runtime image keeps no manual pages).

Licences come from ``/usr/share/doc/<name>/copyright`` through :func:`bastion.sbom._licenses.parse_copyright`
(kept by content under the target's ``derived_cache``).
purls follow the purl spec's ``deb`` type: ``pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-12``
plus ``upstream=<source>`` (``<source>@<source version>`` when that differs) when the source differs from
the binary package, as Syft writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packageurl import PackageURL

from bastion.errors import InputError
from bastion.image import FileKind, ImageTarget
from bastion.sbom._catalog._base import PathResolver, location, os_release, read_text, resolve
from bastion.sbom._licenses import copyright_licenses
from bastion.sbom._model import Package, PackageType

NAME = "dpkg"
_ADMIN = "/var/lib/dpkg"
_MD5SUM_LINE = re.compile(r"^[0-9a-f]{32}\s+\S")
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+", re.IGNORECASE)
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
# deb822(5): a field is its name (no whitespace, no colon), a colon and the value; continuation lines
# begin with a space or tab. The same expressions python-debian's Deb822 parser uses, without its import
# (and charset-normalizer's) on every scan: the status file is text already decoded.
_FIELD = re.compile(r"^(?P<key>[^: \t\n\r\f\v]+)\s*:\s*(?P<data>(?:\S+(\s+\S+)*)?)\s*$")
# Debian Policy §7.1: ``name[:archqual] [(op version)] [[archs]] [<profiles>]``, alternatives split by
# ``|``, relations by ``,`` (python-debian's PkgRelation expressions).
_RELATION = re.compile(
    r"^\s*(?P<name>[a-zA-Z0-9][a-zA-Z0-9.+\-]*)"
    r"(:(?P<archqual>([a-zA-Z0-9][a-zA-Z0-9-]*)))?"
    r"(\s*\(\s*(?P<relop>[>=<]+)\s*(?P<version>[0-9a-zA-Z:\-+~.]+)\s*\))?"
    r"(\s*\[(?P<archs>[\s!\w\-]+)\])?\s*"
    r"((?P<restrictions><.+>))?\s*$"
)
_COMMA = re.compile(r"\s*,\s*")
_PIPE = re.compile(r"\s*\|\s*")


@dataclass
class _Entry:
    fields: dict[str, str]
    evidence: str  # the status file the paragraph came from
    files: list[str] = field(default_factory=list)


class DpkgCataloger:
    name = NAME

    def catalog(self, target: ImageTarget) -> list[Package]:
        entries = self._entries(target)
        if not entries:
            return []
        release = os_release(target)
        namespace = release.namespace if release else "debian"
        distro = release.distro if release else None
        resolver = PathResolver(target)
        packages = [self._package(target, e, namespace, distro, resolver) for e in entries]
        _link_depends(packages, entries)
        return packages

    # -- reading the database ------------------------------------------------------------------------

    def _entries(self, target: ImageTarget) -> list[_Entry]:
        admin = resolve(target, _ADMIN)
        if admin is None:
            return []
        entries: list[_Entry] = []
        status = read_text(target, f"{admin}/status")
        if status is not None:
            for paragraph in _paragraphs(status, target, f"{admin}/status"):
                words = paragraph.get("Status", "").split()
                if "Package" in paragraph and words[-1:] == ["installed"]:
                    entries.append(_Entry(paragraph, f"{admin}/status"))
        status_d = f"{admin}/status.d"
        for info in target.walk(status_d):
            if info.kind is not FileKind.FILE or info.path.count("/") != status_d.count("/") + 1:
                continue
            if info.path.endswith(".md5sums"):
                continue
            text = read_text(target, info.path)
            if text is None or _is_md5sums(text):
                continue
            entries.extend(
                _Entry(p, info.path) for p in _paragraphs(text, target, info.path) if "Package" in p
            )
        return entries

    def _package(
        self, target: ImageTarget, entry: _Entry, namespace: str, distro: str | None, resolver: PathResolver
    ) -> Package:
        f = entry.fields
        name, version, arch = f["Package"], f.get("Version", ""), f.get("Architecture", "")
        source_name, source_version = name, version
        if (source := _SOURCE.match(f.get("Source", "").strip())) is not None:
            source_name, source_version = source.group(1), source.group(2) or version
        qualifiers = {"arch": arch} if arch else {}
        if distro:
            qualifiers["distro"] = distro
        if source_name != name or source_version != version:
            qualifiers["upstream"] = (
                source_name if source_version == version else f"{source_name}@{source_version}"
            )
        purl = PackageURL("deb", namespace, name, version, qualifiers).to_string()
        files = _files(target, name, arch, entry.evidence, resolver)
        copyright_text = read_text(target, f"/usr/share/doc/{name}/copyright")
        description = f.get("Description", "").split("\n", 1)[0].strip() or None
        return Package(
            type=PackageType.DEB,
            name=name,
            version=version,
            purl=purl,
            namespace=namespace,
            architecture=arch or None,
            source_name=source_name,
            source_version=source_version,
            supplier=f.get("Maintainer") or None,
            homepage=f.get("Homepage") or None,
            description=description,
            licenses=(
                copyright_licenses(copyright_text, package=name, cache_dir=target.derived_cache)
                if copyright_text
                else []
            ),
            locations=[location(target, entry.evidence)],
            files=files,
            found_by=NAME,
        )


def _paragraphs(text: str, target: ImageTarget, path: str) -> list[dict[str, str]]:
    paragraphs = []
    for number, paragraph in enumerate(_deb822(text), 1):
        if "Package" in paragraph:
            # deb-control(5) "Package": at least two characters of [a-z0-9+.-]; an empty one would
            # make a package without a name (and without a purl).
            name = paragraph["Package"].strip()
            if not _PACKAGE_NAME.fullmatch(name):
                raise InputError(
                    f"paragraph {number}: Package {name!r} is not a package name",
                    where=f"{target.name}:{path}",
                )
            paragraph["Package"] = name
        paragraphs.append(paragraph)
    return paragraphs


def _deb822(text: str) -> list[dict[str, str]]:
    """The paragraphs of a deb822(5) text as python-debian's Deb822 reads them: paragraphs end at lines
    that are empty or whitespace only, ``#`` lines are comments, a continuation line (starting with
    whitespace) extends the field before it on a new line, and other lines are ignored; a repeated
    field keeps its last value."""
    paragraphs: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line or line.isspace():
            if fields:
                paragraphs.append(fields)
            fields, key = {}, None
            continue
        if (match := _FIELD.match(line)) is not None:
            key = match.group("key")
            fields[key] = match.group("data")
        elif key is not None and line[0].isspace():
            fields[key] += "\n" + line
    if fields:
        paragraphs.append(fields)
    return paragraphs


def _is_md5sums(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return bool(_MD5SUM_LINE.match(first))


def _files(target: ImageTarget, name: str, arch: str, evidence: str, resolver: PathResolver) -> list[str]:
    """The package's paths present in the image, resolved; from the first file list found."""
    admin = evidence.rsplit("/", 2)[0] if "/status.d/" in evidence else evidence.rsplit("/", 1)[0]
    candidates = [f"{admin}/info/{name}.list", f"{admin}/info/{name}:{arch}.list"]
    candidates += [
        f"{admin}/status.d/{name}.md5sums",
        f"{admin}/info/{name}.md5sums",
        f"{admin}/info/{name}:{arch}.md5sums",
    ]
    for candidate in candidates:
        text = read_text(target, candidate)
        if text is None:
            continue
        listed = set()
        for line in text.splitlines():
            path = line.split(None, 1)[1] if candidate.endswith(".md5sums") and " " in line else line
            path = "/" + path.strip().lstrip("/")
            if path == "/" or path.endswith("/."):
                continue
            canonical = resolver.canonical(path)
            if canonical is not None and canonical in target.files and not _is_directory(target, canonical):
                listed.add(canonical)
        return sorted(listed)
    return []


def _is_directory(target: ImageTarget, path: str) -> bool:
    """Directories are shared by many packages and owned by none (nor the ``/lib -> usr/lib`` links
    that replaced the directories a package ships)."""
    info = target.files.get(path)
    if info is not None and info.kind is FileKind.SYMLINK:  # else ``path`` is already what it names
        real = resolve(target, path)
        info = target.files.get(real) if real else None
    return info is not None and info.kind is FileKind.DIRECTORY


def _link_depends(packages: list[Package], entries: list[_Entry]) -> None:
    """Depends and Pre-Depends as refs of the installed packages that satisfy them: per relation the
    first alternative installed (by name, else by ``Provides``), the same architecture preferred."""
    by_name: dict[str, list[Package]] = {}
    for package in packages:
        by_name.setdefault(package.name, []).append(package)
    provides: dict[str, list[Package]] = {}
    for package, entry in zip(packages, entries, strict=True):
        for group in _relations(entry.fields.get("Provides", "")):
            for alternative in group:
                provides.setdefault(alternative, []).append(package)
    for package, entry in zip(packages, entries, strict=True):
        text = ", ".join(v for v in (entry.fields.get("Pre-Depends"), entry.fields.get("Depends")) if v)
        refs: list[str] = []
        for group in _relations(text):
            for alternative in group:
                found = by_name.get(alternative) or provides.get(alternative)
                if found:
                    chosen = next((p for p in found if p.architecture == package.architecture), found[0])
                    if chosen.ref not in refs and chosen is not package:
                        refs.append(chosen.ref)
                    break
        package.depends = refs


def _relations(text: str) -> list[list[str]]:
    """The package names of a deb-control(5) relation field, one list of alternatives per relation; an
    alternative that is not a relation is kept whole (it names no installed package)."""
    if not text.strip():
        return []
    return [
        [(match.group("name") if (match := _RELATION.match(alt)) else alt) for alt in _PIPE.split(relation)]
        for relation in _COMMA.split(text.strip())
    ]
