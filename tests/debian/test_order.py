"""Debian version ordering (Debian Policy §5.6.12): the one implementation, ``bastion.debian``'s sort
key, orders and accepts versions exactly as python-debian's ``Version`` does, on versions generated from
the characters the ordering turns on (epochs, ``~``, ``+``, ``.``, ``-``, letters, upstream versions
that start with a letter such as ``a1.0``) and on every version of the real tracker sample."""

from __future__ import annotations

import json
from functools import cmp_to_key
from itertools import pairwise

import pytest
from debian.debian_support import Version, version_compare
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.vuln.helpers import TRACKER

from bastion.debian import compare_versions, debian_version_key, is_debian_version

_PIECES = ["0", "1", "01", "2", "10", "9", ".", "~", "~~", "+", "a", "b", "Z", "deb12u", "+b1", "-", ":"]
_pieces = st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)
_epochs = st.sampled_from(["", "0:", "1:", "2:", "10:", "007:"])
_revisions = st.one_of(
    st.just(""), st.lists(st.sampled_from(_PIECES[:-2]), min_size=1, max_size=4).map("".join)
)
versions = st.builds(
    lambda epoch, first, rest, revision: epoch + first + rest + (f"-{revision}" if revision else ""),
    _epochs,
    st.sampled_from(["0", "1", "2", "9", "10", "a", "b", "Z"]),  # letters first: ``a1.0`` is a version
    _pieces,
    _revisions,
) | st.text(alphabet="0123456789abZ.+~-:", min_size=1, max_size=12)


def _python_debian_parses(text: str) -> bool:
    """python-debian's Version takes it, with an upstream version that starts with a letter or digit
    and no final hyphen (an empty revision): python-debian takes ``-1`` and ``1.0-``, dpkg does not."""
    try:
        upstream = Version(text).upstream_version
    except ValueError:
        return False
    return bool(upstream) and upstream[0].isalnum() and not text.endswith("-")


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(versions, min_size=2, max_size=12))
def test_the_key_orders_and_accepts_as_python_debian_does(texts: list[str]) -> None:
    for text in texts:
        assert is_debian_version(text) == _python_debian_parses(text), text
    valid = [t for t in texts if is_debian_version(t)]
    for a in valid:
        for b in valid:
            assert compare_versions(a, b) == _sign(version_compare(a, b)), (a, b)
    assert sorted(valid, key=debian_version_key) == sorted(valid, key=cmp_to_key(version_compare))


def test_the_policys_examples_in_order() -> None:
    """§5.6.12: ``~`` sorts before anything, even the end of a part; letters before non-letters; an
    epoch outweighs everything after it; an upstream version may start with a letter."""
    ordered = ["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0-1~bpo", "1.0-1", "1.0-1+deb12u1", "1.0a", "1.0+",
               "1.0.1", "1.01-1", "a1.0", "1:0.1", "1:0.1-1", "2:0~"]  # fmt: skip
    for lower, higher in pairwise(ordered):
        assert compare_versions(lower, higher) < 0 < version_compare(higher, lower), (lower, higher)
    assert compare_versions("1.0", "1.0-0") == 0 == version_compare("1.0", "1.0-0")
    assert compare_versions("0:1.0", "1.0") == 0


@pytest.mark.parametrize(
    "text", ["", "-1", "1.0-", ":1.0", "1:", "1.0:1", "1.0_1", "1.0 1", "é1.0", "1.0-1-"]
)
def test_what_is_no_version_is_refused(text: str) -> None:
    assert not is_debian_version(text)
    with pytest.raises(ValueError, match="not a Debian version"):
        debian_version_key(text)


def test_the_real_tracker_versions_order_as_python_debian_orders_them() -> None:
    if not TRACKER.is_file():
        pytest.skip(f"{TRACKER} is not here")
    found: set[str] = set()
    for releases in json.loads(TRACKER.read_text()).values():
        for cve in releases.values():
            for release in cve.get("releases", {}).values():
                found.update(v for v in release.get("repositories", {}).values() if v)
                found.update([release["fixed_version"]] if release.get("fixed_version") else [])
    valid = sorted(t for t in found if is_debian_version(t))
    assert all(_python_debian_parses(t) for t in valid)
    assert len(valid) >= 5
    assert sorted(valid, key=debian_version_key) == sorted(valid, key=cmp_to_key(version_compare))
