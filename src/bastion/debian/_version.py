"""Debian version comparison and relation parsing.

Comparison is the one sort key of :mod:`bastion.debian._order` (Debian Policy §5.6.12: epochs,
upstream version, revision, ``~`` sorting before everything); relations are parsed by python-debian.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from debian.deb822 import PkgRelation

from bastion.debian._order import debian_version_key

# Debian Policy §7.1: the relation operators. `<` and `>` are obsolete spellings of `<=` and `>=`.
_OPERATORS = {"<<", "<=", "=", ">=", ">>"}


@lru_cache(maxsize=65536)  # the resolver compares the same pairs many times
def compare_versions(a: str, b: str) -> int:
    """Return <0, 0 or >0 as Debian version ``a`` sorts before, equal to, or after ``b``;
    :class:`ValueError` if either is not a version."""
    x, y = debian_version_key(a), debian_version_key(b)
    return (x > y) - (x < y)


def version_satisfies(version: str, operator: str, wanted: str) -> bool:
    """Whether ``version`` satisfies the relation ``(operator wanted)`` (Debian Policy §7.1)."""
    cmp = compare_versions(version, wanted)
    if operator == "<<":
        return cmp < 0
    if operator in ("<=", "<"):
        return cmp <= 0
    if operator == "=":
        return cmp == 0
    if operator in (">=", ">"):
        return cmp >= 0
    if operator == ">>":
        return cmp > 0
    raise ValueError(f"unknown relation operator {operator!r}")


@dataclass(frozen=True)
class Relation:
    """One alternative of a dependency: ``name[:archqual] (op version)``."""

    name: str
    archqual: str | None = None
    operator: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        text = self.name + (f":{self.archqual}" if self.archqual else "")
        if self.operator:
            text += f" ({self.operator} {self.version})"
        return text

    def accepts(self, version: str) -> bool:
        if self.operator is None or self.version is None:
            return True
        return version_satisfies(version, self.operator, self.version)


OrGroup = tuple[Relation, ...]


@lru_cache(maxsize=16384)
def parse_relations(field: str, arch: str) -> tuple[OrGroup, ...]:
    """Parse a Depends-style field into OR groups, keeping only alternatives that apply to ``arch``.

    Architecture restrictions (``[amd64]``) appear in binary packages only in theory; build profile
    restrictions (``<!nocheck>``) never apply to binary packages, so they are ignored (Policy §7.1).
    """
    groups: list[OrGroup] = []
    for group in PkgRelation.parse_relations(field):
        alternatives: list[Relation] = []
        for alt in group:
            arch_restrictions = alt.get("arch")
            if arch_restrictions and not _arch_matches(arch_restrictions, arch):
                continue
            version = alt.get("version")
            operator, wanted = version if version else (None, None)
            if operator is not None and operator not in _OPERATORS and operator not in ("<", ">"):
                raise ValueError(f"unknown relation operator {operator!r} in {field!r}")
            alternatives.append(Relation(alt["name"], alt.get("archqual"), operator, wanted))
        if alternatives:
            groups.append(tuple(alternatives))
    return tuple(groups)


def _arch_matches(restrictions: Sequence[object], arch: str) -> bool:
    enabled = [r for r in restrictions if getattr(r, "enabled", True)]
    if enabled:
        return any(getattr(r, "arch", None) in (arch, "any") for r in enabled)
    return all(getattr(r, "arch", None) != arch for r in restrictions)
