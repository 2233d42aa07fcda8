"""The packages of an SBOM as a rich table, readable in a 100-column terminal: long cells fold or are
cut with an ellipsis instead of widening the table."""

from __future__ import annotations

from rich.table import Table

from bastion.sbom._licenses import declared_expression
from bastion.sbom._model import Package, PackageType, Sbom

__all__ = ["render_table"]


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


def render_table(sbom: Sbom) -> Table:
    """One row per package, sorted by type, name and version."""
    title = sbom.name + (f" ({sbom.platform})" if sbom.platform else "")
    table = Table(title=title, caption=f"{len(sbom.packages)} packages", expand=True, pad_edge=False)
    table.add_column("Type", no_wrap=True)
    table.add_column("Name", overflow="fold", ratio=3)
    table.add_column("Version", overflow="fold", ratio=3)
    table.add_column("Source / arch", overflow="fold", ratio=3)
    table.add_column("Licences", overflow="ellipsis", no_wrap=True, ratio=3)  # one line each
    table.add_column("Location", overflow="fold", ratio=3)
    for package in sorted(
        sbom.packages, key=lambda item: (str(item.type), _name(item), item.version, item.purl)
    ):
        table.add_row(
            str(package.type),
            _name(package),
            package.version,
            _source(package),
            declared_expression(package.licenses) or "",
            _location(package),
        )
    return table
