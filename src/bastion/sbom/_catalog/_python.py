"""Python distributions: ``*.dist-info/METADATA`` (with ``RECORD`` for files) and ``*.egg-info``
(``PKG-INFO`` inside the directory, or the file itself; ``installed-files.txt`` for files), anywhere in
the image: ``site-packages``, Debian's ``dist-packages``, vendored trees.

Metadata is the core metadata format (packaging.python.org "Core metadata specifications"): RFC 822
headers, read with :mod:`email`. The purl name is normalised as PEP 503 says
(``pkg:pypi/zope-interface@5.4.0``). Licences, where clear: ``License-Expression`` (PEP 639), else a
``License`` field that is itself a valid SPDX expression, else the trove classifiers that name one
licence; free text is not guessed at.
"""

from __future__ import annotations

import csv
import functools
import posixpath
import re
from collections.abc import Callable
from email.message import Message
from email.parser import HeaderParser

from packageurl import PackageURL

from bastion.image import FileKind, ImageTarget
from bastion.sbom._catalog._base import location, read_text
from bastion.sbom._catalog._spdx_ids import CLASSIFIERS, spdx
from bastion.sbom._model import License, Package, PackageType

NAME = "python"
_PEP503 = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """PEP 503 "Normalized Names"."""
    return _PEP503.sub("-", name).lower()


class PythonCataloger:
    name = NAME

    def catalog(self, target: ImageTarget) -> list[Package]:
        found: list[tuple[Package, list[str]]] = []
        for info in target.walk():
            path = info.path
            if info.kind is not FileKind.FILE:
                continue
            if path.endswith(".dist-info/METADATA"):
                record = path.rsplit("/", 1)[0] + "/RECORD"
                site = path.rsplit("/", 2)[0]
                package = self._package(target, path, functools.partial(_record, target, record, site))
            elif path.endswith(".egg-info/PKG-INFO"):
                egg = path.rsplit("/", 1)[0]
                package = self._package(target, path, functools.partial(_installed_files, target, egg))
            elif path.endswith(".egg-info"):
                package = self._package(target, path, list)
            else:
                continue
            if package is not None:
                found.append(package)
        by_name = {normalise(p.name): p for p, _ in found}
        for dist, requires in found:
            dist.depends = [by_name[r].ref for r in requires if r in by_name and by_name[r] is not dist]
        return [p for p, _ in found]

    def _package(
        self, target: ImageTarget, path: str, files: Callable[[], list[str]]
    ) -> tuple[Package, list[str]] | None:
        text = read_text(target, path, limit=4 * 1024 * 1024)
        if text is None:
            return None
        meta = HeaderParser().parsestr(text)
        name, version = (meta.get("Name") or "").strip(), (meta.get("Version") or "").strip()
        if not name or not version:
            return None
        purl = PackageURL("pypi", None, normalise(name), version).to_string()
        package = Package(
            type=PackageType.PYPI,
            name=name,
            version=version,
            purl=purl,
            supplier=_author(meta),
            homepage=_homepage(meta),
            description=(meta.get("Summary") or "").strip() or None,
            licenses=_licenses(meta),
            locations=[location(target, path)],
            files=files(),
            found_by=NAME,
        )
        requires = [_requirement_name(r) for r in meta.get_all("Requires-Dist") or [] if ";" not in r]
        return package, [r for r in requires if r]


def _author(meta: Message) -> str | None:
    for key in ("Author-email", "Author", "Maintainer-email", "Maintainer"):
        value = (meta.get(key) or "").strip()
        if value and value.upper() != "UNKNOWN":
            return value
    return None


def _homepage(meta: Message) -> str | None:
    value = (meta.get("Home-page") or "").strip()
    if value and value.upper() != "UNKNOWN":
        return value
    for url in meta.get_all("Project-URL") or []:
        label, _, link = url.partition(",")
        if label.strip().lower() in ("homepage", "home", "source"):
            return link.strip()
    return None


def _licenses(meta: Message) -> list[License]:
    for field in ("License-Expression", "License"):
        found = spdx(meta.get(field))
        if found is not None:
            return [found]
    mapped = sorted(
        {CLASSIFIERS[c.strip()] for c in meta.get_all("Classifier") or [] if c.strip() in CLASSIFIERS}
    )
    return [License(m) for m in mapped]


def _requirement_name(requirement: str) -> str:
    """The PEP 503 name of a ``Requires-Dist`` (PEP 508) requirement; ones with markers are skipped."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return normalise(match.group(1)) if match else ""


def _record(target: ImageTarget, record: str, site: str) -> list[str]:
    """RECORD (PEP 376, "Recording installed files"): CSV rows ``path,hash,size``, paths relative to
    the directory holding the ``.dist-info``."""
    text = read_text(target, record)
    if text is None:
        return []
    paths = set()
    for row in csv.reader(text.splitlines()):
        if row and row[0]:
            joined = row[0] if row[0].startswith("/") else posixpath.join(site, row[0])
            paths.add(posixpath.normpath(joined))
    return sorted(p for p in paths if p in target.files)


def _installed_files(target: ImageTarget, egg: str) -> list[str]:
    text = read_text(target, egg + "/installed-files.txt")
    if text is None:
        return []
    paths = {
        posixpath.normpath(posixpath.join(egg, line.strip())) for line in text.splitlines() if line.strip()
    }
    return sorted(p for p in paths if p in target.files)
