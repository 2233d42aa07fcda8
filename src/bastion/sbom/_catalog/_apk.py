"""Alpine packages: the apk database ``/lib/apk/db/installed``.

Format (apk-tools, "Installed database"): paragraphs separated by a blank line, one ``X:value`` line
per field: ``P`` name, ``V`` version, ``A`` architecture, ``L`` licence, ``o`` origin (source
package), ``m`` maintainer, ``U`` URL, ``T`` description, ``D`` dependencies, ``F`` a directory and
the ``R`` lines after it files in that directory.

purl: ``pkg:apk/alpine/<name>@<version>?arch=<arch>&distro=alpine-<VERSION_ID>`` with
``upstream=<origin>`` when the origin differs from the name.
"""

from __future__ import annotations

from packageurl import PackageURL

from bastion.image import ImageTarget
from bastion.sbom._catalog._base import location, os_release, read_text, resolve
from bastion.sbom._catalog._spdx_ids import spdx
from bastion.sbom._model import Package, PackageType

NAME = "apk"
_DB = "/lib/apk/db/installed"


class ApkCataloger:
    name = NAME

    def catalog(self, target: ImageTarget) -> list[Package]:
        path = resolve(target, _DB)
        text = read_text(target, path) if path else None
        if path is None or text is None:
            return []
        release = os_release(target)
        namespace = release.namespace if release and release.id else "alpine"
        distro = release.distro if release else None
        packages = []
        for record in text.split("\n\n"):
            package = _package(target, record, path, namespace, distro)
            if package is not None:
                packages.append(package)
        _link_depends(packages, text)
        return packages


def _fields(record: str) -> tuple[dict[str, str], list[str], list[str]]:
    fields: dict[str, str] = {}
    files: list[str] = []
    depends: list[str] = []
    directory = ""
    for line in record.splitlines():
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "F":
            directory = value
        elif key == "R":
            files.append("/" + (f"{directory}/{value}" if directory else value))
        elif key == "D":
            depends += value.split()
        else:
            fields.setdefault(key, value)
    return fields, files, depends


def _package(
    target: ImageTarget, record: str, path: str, namespace: str, distro: str | None
) -> Package | None:
    fields, files, _ = _fields(record)
    name, version = fields.get("P", ""), fields.get("V", "")
    if not name or not version:
        return None
    arch, origin = fields.get("A", ""), fields.get("o", "")
    qualifiers = {"arch": arch} if arch else {}
    if distro:
        qualifiers["distro"] = distro
    if origin and origin != name:
        qualifiers["upstream"] = origin
    licence = spdx(fields.get("L"))
    return Package(
        type=PackageType.APK,
        name=name,
        version=version,
        purl=PackageURL("apk", namespace, name, version, qualifiers).to_string(),
        namespace=namespace,
        architecture=arch or None,
        source_name=origin or name,
        source_version=version,
        supplier=fields.get("m") or None,
        homepage=fields.get("U") or None,
        description=fields.get("T") or None,
        licenses=[licence] if licence else [],
        locations=[location(target, path)],
        files=sorted(f for f in set(files) if f in target.files),
        found_by=NAME,
    )


def _link_depends(packages: list[Package], text: str) -> None:
    """``D:`` names (``so:libc.musl-x86_64.so.1``, ``cmd:``, plain names) to the packages that are or
    provide them (``p:``); ``!name`` (conflicts) is skipped."""
    by_name = {p.name: p for p in packages}
    provider: dict[str, Package] = {}
    records = [r for r in text.split("\n\n") if _fields(r)[0].get("P")]
    for record in records:
        fields, _, _ = _fields(record)
        package = by_name.get(fields["P"])
        for line in record.splitlines():
            if line.startswith("p:") and package is not None:
                for provided in line[2:].split():
                    provider.setdefault(provided.split("=", 1)[0], package)
    for record in records:
        fields, _, depends = _fields(record)
        package = by_name.get(fields["P"])
        if package is None:
            continue
        refs = []
        for dep in depends:
            if dep.startswith("!"):
                continue
            name = dep.split("=", 1)[0].split(">", 1)[0].split("<", 1)[0].split("~", 1)[0]
            found = by_name.get(name) or provider.get(name)
            if found is not None and found is not package and found.ref not in refs:
                refs.append(found.ref)
        package.depends = refs
