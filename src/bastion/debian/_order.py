"""Debian version ordering (Debian Policy §5.6.12), as a sort key made once per version.

The one implementation Bastion orders Debian versions with: the resolver (newest candidate, relation
checks), the vulnerability matcher (OSV ranges and tracker fixes over thousands of versions) and SBOM
comparison (upgrade or downgrade). ``tests/debian/test_order.py`` holds it to python-debian's order.

A key rather than a pairwise comparison: python-debian's ``version_compare`` compares two strings at a
time, re-splitting both on every call; a key is made once per version and compared natively.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["DebianVersionKey", "debian_version_key", "is_debian_version"]

#: What :func:`debian_version_key` returns; keys of two versions order as the versions do.
DebianVersionKey = tuple[Any, ...]

# §5.6.12 syntax, as python-debian's Version accepts it: [epoch:]upstream[-revision], the revision
# after the last hyphen; a colon in the upstream version only with an epoch. The upstream version
# "should" start with a digit (dpkg only warns), so ``a1.0`` is a version; it must start with a letter
# or digit, and a final hyphen (an empty revision) is refused, as dpkg refuses it. The digits are 0-9
# (``\d`` would take any Unicode digit), and the version is matched whole (``$`` would also match
# before a final newline).
_VERSION = re.compile(r"(?:([0-9]+):)?([A-Za-z0-9.+:~-]+?)(?:-([A-Za-z0-9+.~]+))?")
_RUNS = re.compile(r"([^0-9]*)([0-9]*)")

# The weight of each character a version may hold outside its digits (dpkg's order()): ``~`` before
# the end of a run, the end (0) before letters, letters before everything else.
_WEIGHTS = {c: -1 if c == "~" else ord(c) if c.isalpha() else ord(c) + 256 for c in map(chr, range(128))}


def _parts(version: str) -> tuple[str, str, str] | None:
    match = _VERSION.fullmatch(version)
    if match is None:
        return None
    epoch, upstream, revision = match.groups()
    if (epoch is None and ":" in upstream) or not upstream[0].isalnum():
        return None
    if revision is None and upstream.endswith("-"):
        return None  # "1.0-": an empty revision, which dpkg refuses
    return epoch or "", upstream, revision or ""


def is_debian_version(version: str) -> bool:
    """Whether ``version`` has §5.6.12 syntax, so that :func:`debian_version_key` orders it: the check
    an import makes on every version it stores, without building the key."""
    return _parts(version) is not None


@lru_cache(maxsize=65536)
def debian_version_key(version: str) -> DebianVersionKey:
    """A tuple that sorts as dpkg orders versions (§5.6.12); :class:`ValueError` if it is none.

    Epochs compare numerically, then the upstream version, then the revision (absent is ``0``), each
    as alternating runs of non-digits (character by character, by :data:`_WEIGHTS`) and digits
    (numerically, an empty run being 0). The string's end is one more empty non-digit run, so
    ``1.0~`` < ``1.0`` < ``1.0a`` < ``1.0.1``."""
    parts = _parts(version)
    if parts is None:
        raise ValueError(f"not a Debian version: {version[:200]!r}")
    epoch, upstream, revision = parts
    return (_number(epoch), _runs(upstream), _runs(revision))


def _number(digits: str) -> tuple[int, str]:
    """A run of digits as a key that orders numerically without int(): Python refuses to convert
    more than 4,300 digits, and a version string may come from the image being scanned."""
    significant = digits.lstrip("0")
    return len(significant), significant


def _runs(text: str) -> tuple[Any, ...]:
    key: list[Any] = []
    for letters, digits in _RUNS.findall(text):
        if key and not (letters or digits):
            break  # the empty match at the end of the string
        key.append((*map(_WEIGHTS.__getitem__, letters), 0))
        key.append(_number(digits))
    key.append((0,))
    return tuple(key)
