"""Comparing two SBOMs, its text and Markdown renderings, and the terminal table of packages."""

from __future__ import annotations

from rich.console import Console
from tests.sbom.test_spdx import sample_sbom

from bastion.cli._tables import sbom_table
from bastion.sbom import (
    Package,
    PackageKey,
    PackageType,
    Sbom,
    compare,
    render_comparison_markdown,
    render_comparison_text,
)


def changed_sbom() -> tuple[Sbom, Sbom]:
    before = sample_sbom()
    after = sample_sbom()
    after.name = "bastion/python:3.11-next"
    packages = {package.name: package for package in after.packages}
    packages["zlib1g"].version = "1:1.3.dfsg-3"  # upgrade (epoch kept)
    packages["libfoo"].version = "1:2.3-1"  # downgrade: 2.3 < 2.3+dfsg by dpkg's ordering
    packages["jackson-databind"].version = "2.18.0"
    after.packages.remove(packages["requests"])
    after.packages.append(Package(PackageType.PYPI, "urllib3", "2.2.1", "pkg:pypi/urllib3@2.2.1"))
    # Same name, other architecture: a different package, not a change.
    after.packages.append(Package(PackageType.DEB, "libssl3", "3.0.22-1~deb12u2", "pkg:deb/debian/libssl3@3.0.22-1~deb12u2?arch=i386",
                                  architecture="i386"))  # fmt: skip
    return before, after


def test_compare() -> None:
    before, after = changed_sbom()
    result = compare(before, after)
    assert [change.key for change in result.added] == [
        PackageKey("deb", "", "libssl3", "i386"),
        PackageKey("pypi", "", "urllib3", ""),
    ]
    assert [(change.key.name, change.before) for change in result.removed] == [("requests", ("2.31.0",))]
    assert [
        (change.key.display(), change.before, change.after, change.direction) for change in result.changed
    ] == [
        ("libfoo", ("1:2.3+dfsg-1~deb12u1",), ("1:2.3-1",), "downgrade"),
        ("zlib1g", ("1:1.2.13.dfsg-1",), ("1:1.3.dfsg-3",), "upgrade"),
        ("com.fasterxml.jackson.core:jackson-databind", ("2.17.0",), ("2.18.0",), None),
    ]
    assert result.unchanged == 3
    assert not result.identical
    assert compare(before, before).identical


def test_multiple_versions_of_one_package() -> None:
    before = sample_sbom()
    after = sample_sbom()
    after.packages.append(
        Package(PackageType.NPM, "core", "7.25.0", "pkg:npm/%40babel/core@7.25.0", namespace="babel")
    )
    (change,) = compare(before, after).changed
    assert change.key.display() == "@babel/core"
    assert (change.before, change.after) == (("7.24.0",), ("7.24.0", "7.25.0"))


def test_text_rendering() -> None:
    before, after = changed_sbom()
    text = render_comparison_text(compare(before, after))
    lines = text.splitlines()
    assert lines[0] == "bastion/python:3.11 -> bastion/python:3.11-next"
    assert "+ deb libssl3 [i386] 3.0.22-1~deb12u2" in lines
    assert "- pypi requests 2.31.0" in lines
    assert "~ deb zlib1g [amd64] 1:1.2.13.dfsg-1 -> 1:1.3.dfsg-3 (upgrade)" in lines
    assert lines[-1] == "2 added, 1 removed, 3 changed, 3 unchanged"


def test_markdown_rendering() -> None:
    before, after = changed_sbom()
    next(
        package for package in after.packages if package.name == "urllib3"
    ).name = "pipe|name"  # a cell must not break the table
    markdown = render_comparison_markdown(compare(before, after))
    assert "| downgrade | deb | libfoo | amd64 | 1:2.3+dfsg-1~deb12u1 | 1:2.3-1 |" in markdown
    assert "| added | pypi | pipe\\|name | - | - | 2.2.1 |" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert all(line.replace("\\|", "").count("|") == 7 for line in table)
    identical = render_comparison_markdown(compare(before, before))
    assert "0 added, 0 removed, 0 changed, 7 unchanged." in identical
    assert "|" not in identical


def test_table_fits_100_columns() -> None:
    console = Console(width=100, record=True, color_system=None)
    console.print(sbom_table(sample_sbom()))  # the terminal renderer is the CLI's
    output = console.export_text()
    assert max(len(line) for line in output.splitlines()) <= 100
    for expected in ("zlib1g", "@babel/core", "1:1.2.13.dfsg-1", "openssl / amd64", "Zlib", "7 packages"):
        assert expected in output
    assert "/var/lib/dpkg/status.d/zlib1g" in output.replace("\n", "").replace("│", "").replace(" ", "")
