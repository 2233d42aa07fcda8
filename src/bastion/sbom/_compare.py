"""Compare two SBOMs: packages added, removed, and changed (same identity, different version).

A package's identity is (type, namespace, name, architecture): ``libssl3`` amd64 and ``libssl3`` arm64
are different packages, ``com.example:core`` and ``org.other:core`` too. One identity may have several
versions in one SBOM (two copies of an npm package): it is unchanged when the sets of versions are
equal, and changed otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from bastion.debian import compare_versions
from bastion.sbom._model import PackageType, Sbom

__all__ = [
    "Change",
    "Comparison",
    "PackageKey",
    "compare",
    "render_comparison_markdown",
    "render_comparison_text",
]


@dataclass(frozen=True, order=True)
class PackageKey:
    type: str
    namespace: str
    name: str
    architecture: str

    def display(self) -> str:
        if not self.namespace:
            return self.name
        if self.type == PackageType.NPM:
            return f"@{self.namespace}/{self.name}"
        separator = ":" if self.type == PackageType.MAVEN else "/"
        return f"{self.namespace}{separator}{self.name}"


@dataclass(frozen=True)
class Change:
    key: PackageKey
    before: tuple[str, ...]  # empty when added
    after: tuple[str, ...]  # empty when removed

    @property
    def direction(self) -> str | None:
        """``upgrade`` or ``downgrade`` for a Debian package with one version on each side (compared as
        dpkg compares, deb-version(7)); None otherwise, and when either version is not a Debian version
        (an image's dpkg status can hold anything)."""
        if self.key.type != PackageType.DEB or len(self.before) != 1 or len(self.after) != 1:
            return None
        try:
            return "upgrade" if compare_versions(self.after[0], self.before[0]) > 0 else "downgrade"
        except ValueError:
            return None


@dataclass(frozen=True)
class Comparison:
    before: str  # SBOM names
    after: str
    added: tuple[Change, ...]
    removed: tuple[Change, ...]
    changed: tuple[Change, ...]
    unchanged: int

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _index(sbom: Sbom) -> dict[PackageKey, tuple[str, ...]]:
    found: dict[PackageKey, set[str]] = defaultdict(set)
    for package in sbom.packages:
        key = PackageKey(str(package.type), package.namespace or "", package.name, package.architecture or "")
        found[key].add(package.version)
    return {key: tuple(sorted(versions)) for key, versions in found.items()}


def compare(a: Sbom, b: Sbom) -> Comparison:
    """What changed from ``a`` to ``b``."""
    before, after = _index(a), _index(b)
    added = tuple(Change(key, (), after[key]) for key in sorted(after.keys() - before.keys()))
    removed = tuple(Change(key, before[key], ()) for key in sorted(before.keys() - after.keys()))
    common = sorted(before.keys() & after.keys())
    changed = tuple(Change(key, before[key], after[key]) for key in common if before[key] != after[key])
    return Comparison(a.name, b.name, added, removed, changed, len(common) - len(changed))


def _versions(versions: tuple[str, ...]) -> str:
    return ", ".join(versions) if versions else "-"


def _summary(comparison: Comparison) -> str:
    return (
        f"{len(comparison.added)} added, {len(comparison.removed)} removed, "
        f"{len(comparison.changed)} changed, {comparison.unchanged} unchanged"
    )


def _rows(comparison: Comparison) -> list[tuple[str, Change]]:
    return (
        [("added", change) for change in comparison.added]
        + [("removed", change) for change in comparison.removed]
        + [(change.direction or "changed", change) for change in comparison.changed]
    )


def render_comparison_text(comparison: Comparison) -> str:
    """Plain text: one line per difference (``+``, ``-``, ``~``), then the summary."""
    marks = {"added": "+", "removed": "-"}
    lines = [f"{comparison.before} -> {comparison.after}"]
    for kind, change in _rows(comparison):
        arch = f" [{change.key.architecture}]" if change.key.architecture else ""
        name = f"{change.key.type} {change.key.display()}{arch}"
        if kind in marks:
            versions = change.after if kind == "added" else change.before
            lines.append(f"{marks[kind]} {name} {_versions(versions)}")
        else:
            lines.append(f"~ {name} {_versions(change.before)} -> {_versions(change.after)} ({kind})")
    lines.append(_summary(comparison))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A GitHub-flavoured Markdown table cell: pipes escaped, no line breaks."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_comparison_markdown(comparison: Comparison) -> str:
    """A Markdown section: the summary and a table of the differences."""
    lines = [
        f"### SBOM comparison: `{_cell(comparison.before)}` → `{_cell(comparison.after)}`",
        "",
        _summary(comparison) + ".",
    ]
    if not comparison.identical:
        lines += ["", "| Change | Type | Package | Arch | Before | After |", "|---|---|---|---|---|---|"]
        for kind, change in _rows(comparison):
            cells = [kind, change.key.type, change.key.display(), change.key.architecture or "-",
                     _versions(change.before), _versions(change.after)]  # fmt: skip
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
