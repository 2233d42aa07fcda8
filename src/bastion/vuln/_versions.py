"""Version ordering per ecosystem, and OSV range evaluation.

* Debian (``Debian:N``): Debian Policy §5.6.12, the one sort key of ``bastion.debian``
  (:func:`bastion.debian.debian_version_key`, made once per version).
* PyPI: PEP 440, the ``packaging`` library (what pip itself uses).
* npm, Go, crates.io: SemVer 2.0.0 precedence (§11). Hand-written: no declared dependency implements
  SemVer precedence, and the rule is twenty lines. Go versions lose their ``v`` and ``+incompatible``
  (Go modules reference, "Versions").
* Maven: the ordering of Maven's ``ComparableVersion``, reduced to what advisories use (numbers, the
  well-known qualifiers, ``-``/``.`` separators). Hand-written for the same reason.

An unparsable version raises :class:`VersionError` (a ``ValueError``) and nothing else: at import time
a bad range is a malformed record, and at match time an installed version that does not parse is
matched only by the records that need no ordering (:mod:`bastion.vuln._match`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

from bastion.debian import DebianVersionKey, debian_version_key

__all__ = [
    "ECOSYSTEMS",
    "VersionError",
    "affected_by_ranges",
    "compare",
    "debian_release",
    "is_known_ecosystem",
    "normalise_package",
    "parse",
]


class VersionError(ValueError):
    """A version string the ecosystem's rules cannot order."""


DEBIAN_PREFIX = "Debian:"
#: The OSV ecosystems Bastion matches (OSV schema, "affected[].package.ecosystem").
ECOSYSTEMS = frozenset({"PyPI", "npm", "Go", "Maven", "crates.io"})
_PEP503 = re.compile(r"[-_.]+")
# Every pattern here is ASCII: ``\d`` would match any Unicode digit (Arabic-Indic, full-width), which
# no version scheme allows (Policy §5.6.12, SemVer §2: the digits 0-9; dpkg refuses others, python-debian
# reads them as numbers). Versions are matched whole (fullmatch): ``$`` also matches before a final
# newline, which would let ``"1.0\n"`` pass a check and then fail to parse.
_DIGITS = re.compile(r"[0-9]+")


def is_known_ecosystem(ecosystem: str) -> bool:
    return ecosystem in ECOSYSTEMS or debian_release(ecosystem) is not None


def debian_release(ecosystem: str) -> str | None:
    """``Debian:12`` -> ``12`` (OSV writes Debian releases by number; ``Debian:12.4`` is release 12)."""
    if not ecosystem.startswith(DEBIAN_PREFIX):
        return None
    release = ecosystem[len(DEBIAN_PREFIX) :].split(".", 1)[0]
    return release if _DIGITS.fullmatch(release) or release == "sid" else None


def normalise_package(ecosystem: str, name: str) -> str:
    """The key packages are stored and looked up by: PEP 503 names for PyPI (``Pillow`` is ``pillow``),
    names as they are elsewhere (npm, Go and Debian names are case-sensitive)."""
    if ecosystem == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name


# -- SemVer 2.0.0 -------------------------------------------------------------------------------------

_SEMVER = re.compile(r"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")


def _semver(text: str) -> tuple[Any, ...]:
    """A sort key with SemVer §11 precedence. Missing minor/patch count as 0 (Go's ``v1`` and npm's
    loose ``1.2`` appear in advisories)."""
    text = text.strip().removesuffix("+incompatible")
    match = _SEMVER.fullmatch(text)
    if match is None:
        raise VersionError(f"not a semantic version: {text!r}")
    core = tuple(_number(part or "") for part in match.group(1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return (core, 1, ())  # §11.3: a release sorts after all of its pre-releases
    # §11.4: numeric identifiers sort numerically and before alphanumeric ones.
    ids = tuple((0, _number(p), "") if _DIGITS.fullmatch(p) else (1, (0, ""), p) for p in pre.split("."))
    return (core, 0, ids)


# -- Maven ----------------------------------------------------------------------------------------------

_MAVEN_QUALIFIERS = {"alpha": 1, "a": 1, "beta": 2, "b": 2, "milestone": 3, "m": 3, "rc": 4, "cr": 4,
                     "snapshot": 5, "": 6, "ga": 6, "final": 6, "release": 6, "sp": 7}  # fmt: skip
_MAVEN_TOKEN = re.compile(r"([0-9]+|[a-z]+)")
_MAX_MAVEN_DIGITS = 4000


def _maven(text: str) -> tuple[Any, ...]:
    """ComparableVersion order: numbers compare numerically, trailing zeros and release qualifiers are
    dropped, known qualifiers in their order before unknown ones (alphabetically)."""
    tokens = _MAVEN_TOKEN.findall(text.strip().lower())
    if not tokens:
        raise VersionError(f"not a Maven version: {text!r}")
    items: list[tuple[int, int, str]] = []
    for token in tokens:
        if token.isdigit():
            if len(token) > _MAX_MAVEN_DIGITS:  # int() refuses more than 4,300 digits
                raise VersionError(f"not a Maven version: a number of {len(token)} digits")
            items.append((2, int(token), ""))
        elif token in _MAVEN_QUALIFIERS:
            items.append((1, _MAVEN_QUALIFIERS[token] - 6, ""))  # release qualifiers weigh 0
        else:
            items.append((1, 2, token))  # unknown qualifiers sort after "sp", alphabetically
    # Zeros before a qualifier, and trailing zeros and release qualifiers, are "null" items
    # (ComparableVersion normalisation): 1.0-rc1 == 1-rc1, 1.0.0 == 1.
    cleaned: list[tuple[int, int, str]] = []
    for item in items:
        if item[0] == 1:
            while cleaned and cleaned[-1] == (2, 0, ""):
                cleaned.pop()
        cleaned.append(item)
    while cleaned and cleaned[-1][:2] in ((2, 0), (1, 0)):
        cleaned.pop()
    items = cleaned
    # Padding: a missing item compares as a release qualifier (1, 0): 1.0 == 1 < 1.0.1, 1-rc < 1.
    return tuple(items)


def _maven_compare(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
    for index in range(max(len(a), len(b))):
        x = a[index] if index < len(a) else (1, 0, "")
        y = b[index] if index < len(b) else (1, 0, "")
        if x != y:
            return -1 if x < y else 1
    return 0


# -- Debian --------------------------------------------------------------------------------------------


def _debian_key(version: str) -> DebianVersionKey:
    try:
        return debian_version_key(version)
    except ValueError as err:
        raise VersionError(str(err)) from None


def _number(digits: str) -> tuple[int, str]:
    """A run of digits as a key that orders numerically without int(): Python refuses to convert
    more than 4,300 digits, and a version string comes from the image being scanned."""
    significant = digits.lstrip("0")
    return len(significant), significant


def _pep440(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise VersionError(f"not a PEP 440 version: {text!r}") from None


@lru_cache(maxsize=262144)
def parse(ecosystem: str, version: str) -> Any:
    """A comparable key for ``version`` under ``ecosystem``'s rules."""
    if ecosystem == "PyPI":
        return _pep440(version)
    if ecosystem in ("npm", "Go", "crates.io"):
        return _semver(version)
    if ecosystem == "Maven":
        return _MavenKey(_maven(version))
    if debian_release(ecosystem) is not None:
        return _debian_key(version)
    raise VersionError(f"unknown ecosystem {ecosystem!r}")


class _MavenKey:
    __slots__ = ("items",)

    def __init__(self, items: tuple[Any, ...]) -> None:
        self.items = items

    def __lt__(self, other: _MavenKey) -> bool:
        return _maven_compare(self.items, other.items) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _MavenKey) and _maven_compare(self.items, other.items) == 0

    def __hash__(self) -> int:
        return hash(self.items)


def compare(ecosystem: str, a: str, b: str) -> int:
    """<0, 0, >0 as ``a`` sorts before, equal to or after ``b``; raises :class:`VersionError`."""
    x, y = parse(ecosystem, a), parse(ecosystem, b)
    return -1 if x < y else (0 if x == y else 1)


def affected_by_ranges(
    ecosystem: str, version: str, events: Sequence[dict[str, str]]
) -> tuple[bool, str | None, str | None]:
    """Evaluate one OSV ``ECOSYSTEM``/``SEMVER`` range (OSV schema, "Evaluation"): events sorted by
    version, ``introduced`` turns affected on, ``fixed`` off at that version, ``last_affected`` off
    after it. ``introduced: "0"`` is before every version.

    Returns ``(affected, fixed_version, fixed_at)``: the first ``fixed`` after ``version`` when
    affected, and the fix ``version`` is at or after when it is not (for VEX ``fixed``)."""
    key = parse(ecosystem, version)
    sortable: list[tuple[int, Any, str, str]] = []
    for event in events:
        ((kind, value),) = event.items()
        if kind == "limit":
            continue  # limit only bounds GIT ranges (OSV schema, "limit")
        rank = -1 if (kind == "introduced" and value == "0") else 0
        sortable.append((rank, None if rank < 0 else parse(ecosystem, value), kind, value))
    sortable.sort(key=_event_sort_key)
    affected = False
    fixed_at: str | None = None
    for rank, at, kind, value in sortable:
        if kind == "introduced" and (rank < 0 or not key < at):
            affected, fixed_at = True, None
        elif kind == "fixed" and not key < at:
            affected, fixed_at = False, value
        elif kind == "last_affected" and at < key:
            affected, fixed_at = False, None
    fixed_version = None
    if affected:
        later = [value for rank, at, kind, value in sortable if kind == "fixed" and key < at]
        fixed_version = later[0] if later else None
    return affected, fixed_version, fixed_at


def _event_cmp(x: tuple[int, Any, str, str], y: tuple[int, Any, str, str]) -> int:
    if x[0] != y[0]:
        return x[0] - y[0]
    if x[1] is None or y[1] is None or x[1] == y[1]:
        return 0
    return -1 if x[1] < y[1] else 1


_event_sort_key = functools.cmp_to_key(_event_cmp)
