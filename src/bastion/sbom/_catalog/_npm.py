"""npm packages: the ``package.json`` at the root of each package directory under a ``node_modules``
directory (``node_modules/<name>/package.json``, ``node_modules/@scope/<name>/package.json``), at any
depth of nesting. A ``package.json`` deeper inside a package (``dist/esm/package.json`` module markers,
test fixtures) is not a package of the image. A project's own ``package.json`` outside
``node_modules`` is reported only when it is an installed npm project: its directory holds a
``node_modules`` directory or a ``package-lock.json`` (the application whose dependencies those are;
Syft reports it too). One without both ``name`` and ``version`` is skipped.

purl (purl spec ``npm`` type): the scope is the namespace, ``pkg:npm/%40babel/core@7.24.0``. Licences
where clear: ``license`` as an SPDX expression, or the legacy ``license: {type}`` / ``licenses: [{type}]``.
"""

from __future__ import annotations

from packageurl import PackageURL

from bastion.documents import load_json
from bastion.errors import InputError
from bastion.image import FileKind, ImageTarget
from bastion.sbom._catalog._base import location, read_text
from bastion.sbom._catalog._spdx_ids import spdx
from bastion.sbom._model import License, Package, PackageType

NAME = "npm"
_MANIFEST = "package.json"


def _is_package_root(path: str) -> bool:
    parts = path.split("/")
    if len(parts) >= 4 and parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return True
    return len(parts) >= 5 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def _is_project_root(target: ImageTarget, path: str) -> bool:
    if "/node_modules/" in path:
        return False
    directory = path.rpartition("/")[0]
    modules = target.files.get(f"{directory}/node_modules")
    return (modules is not None and modules.kind is FileKind.DIRECTORY) or (
        f"{directory}/package-lock.json" in target.files
    )


class NpmCataloger:
    name = NAME

    def catalog(self, target: ImageTarget) -> list[Package]:
        packages = []
        for info in target.walk():
            if info.kind is not FileKind.FILE or not info.path.endswith("/" + _MANIFEST):
                continue
            if not _is_package_root(info.path) and not _is_project_root(target, info.path):
                continue
            package = _package(target, info.path)
            if package is not None:
                packages.append(package)
        return packages


def _package(target: ImageTarget, path: str) -> Package | None:
    text = read_text(target, path, limit=4 * 1024 * 1024)
    try:
        doc = load_json(text, where=path) if text is not None else None
    except InputError:
        return None  # not JSON, or hostile JSON (nested thousands deep): not a package manifest
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    scope, _, bare = name.rpartition("/") if name.startswith("@") else ("", "", name)
    purl = PackageURL("npm", scope or None, bare, version).to_string()
    homepage = doc.get("homepage")
    description = doc.get("description")
    return Package(
        type=PackageType.NPM,
        name=name,
        version=version,
        purl=purl,
        namespace=scope.removeprefix("@") or None,
        supplier=_author(doc.get("author")),
        homepage=homepage if isinstance(homepage, str) and homepage else None,
        description=description.strip() or None if isinstance(description, str) else None,
        licenses=_licenses(doc),
        locations=[location(target, path)],
        found_by=NAME,
    )


def _author(author: object) -> str | None:
    if isinstance(author, str):
        return author.strip() or None
    name = author.get("name") if isinstance(author, dict) else None
    if isinstance(author, dict) and isinstance(name, str):
        email = author.get("email")
        return name + (f" <{email}>" if isinstance(email, str) and email else "")
    return None


def _licenses(doc: dict[str, object]) -> list[License]:
    value = doc.get("license")
    candidates: list[object] = [value] if value is not None else []
    legacy = doc.get("licenses")
    if isinstance(legacy, list):
        candidates += legacy
    found: list[License] = []
    for candidate in candidates:
        text = candidate.get("type") if isinstance(candidate, dict) else candidate
        licence = spdx(text) if isinstance(text, str) else None
        if licence is not None and licence not in found:
            found.append(licence)
    return found
