"""The packages of an SBOM as rows of text, one per package, for a table view (the terminal renderer is
the CLI's: ``bastion.cli._tables``)."""

from __future__ import annotations

from bastion.sbom._licenses import declared_expression
from bastion.sbom._model import Package, PackageType, Sbom

__all__ = ["TABLE_COLUMNS", "table_rows"]

#: The columns of :func:`table_rows`.
TABLE_COLUMNS = ("Type", "Name", "Version", "Source / arch", "Licences", "Location")


def _name(package: Package) -> str:
    if not package.namespace:
        return package.name
    if package.type == PackageType.NPM:
        return f"@{package.namespace}/{package.name}"
    return (
        f"{package.namespace}:{package.name}"
        if package.type == PackageType.MAVEN
        else f"{package.namespace}/{package.name}"
    )


def _source(package: Package) -> str:
    parts = []
    if package.source_name and (
        package.source_name != package.name or package.source_version not in (None, package.version)
    ):
        source = package.source_name
        if package.source_version and package.source_version != package.version:
            source += f" {package.source_version}"
        parts.append(source)
    if package.architecture:
        parts.append(package.architecture)
    return " / ".join(parts)


def _location(package: Package) -> str:
    if not package.locations:
        return ""
    first = min(package.locations)
    more = len(package.locations) - 1
    return first.path + (f" (+{more})" if more else "")


def table_rows(sbom: Sbom) -> list[tuple[str, ...]]:
    """One row per package (:data:`TABLE_COLUMNS`), sorted by type, name and version."""
    return [
        (
            str(package.type),
            _name(package),
            package.version,
            _source(package),
            declared_expression(package.licenses) or "",
            _location(package),
        )
        for package in sorted(
            sbom.packages, key=lambda item: (str(item.type), _name(item), item.version, item.purl)
        )
    ]
