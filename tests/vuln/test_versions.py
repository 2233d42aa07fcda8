from __future__ import annotations

import pytest

from bastion.vuln._versions import VersionError, affected_by_ranges, compare, parse


@pytest.mark.parametrize(
    ("ecosystem", "lower", "higher"),
    [
        ("Debian:12", "1:1.0-1", "2:0.1-1"),  # epoch first (Policy §5.6.12)
        ("Debian:12", "3.0.11-1~deb12u2", "3.0.11-1"),  # ~ sorts before everything
        ("Debian:12", "2.36-9+deb12u3", "2.36-9+deb12u10"),
        ("PyPI", "21.0", "21.0.1"),
        ("PyPI", "1.0rc1", "1.0"),
        ("PyPI", "1.0.post1", "1.1.dev0"),
        ("npm", "1.0.0-alpha", "1.0.0-alpha.1"),  # SemVer §11.4 examples, in order
        ("npm", "1.0.0-alpha.beta", "1.0.0-beta"),
        ("npm", "1.0.0-beta.2", "1.0.0-beta.11"),
        ("npm", "1.0.0-rc.1", "1.0.0"),
        ("Go", "v0.0.0-20210101000000-abcdef123456", "v0.1.0"),
        ("Go", "1.2.3", "v1.10.0+incompatible"),
        ("Maven", "1.0-alpha1", "1.0-beta1"),
        ("Maven", "1.0-rc1", "1.0"),
        ("Maven", "1.0", "1.0-sp1"),
        ("Maven", "2.12.7", "2.12.7.1"),
    ],
)
def test_ordering(ecosystem: str, lower: str, higher: str) -> None:
    assert compare(ecosystem, lower, higher) < 0
    assert compare(ecosystem, higher, lower) > 0


def test_equal_forms() -> None:
    assert compare("Maven", "1.0", "1") == 0
    assert compare("Maven", "1.0.0-rc1", "1-rc1") == 0
    assert compare("PyPI", "1.0", "1.0.0") == 0
    assert compare("npm", "1.0.0+build.1", "1.0.0") == 0  # build metadata has no precedence


@pytest.mark.parametrize(
    ("ecosystem", "bad"), [("PyPI", "2019-09-12x"), ("npm", "one"), ("Debian:12", "-1"), ("Hex", "1")]
)
def test_bad_versions_raise(ecosystem: str, bad: str) -> None:
    with pytest.raises(VersionError):
        parse(ecosystem, bad)


def test_range_evaluation() -> None:
    events = [{"introduced": "0"}, {"fixed": "1.3"}, {"introduced": "2.0"}, {"fixed": "2.5"}]
    assert affected_by_ranges("PyPI", "1.2", events) == (True, "1.3", None)
    assert affected_by_ranges("PyPI", "1.5", events) == (False, None, "1.3")
    assert affected_by_ranges("PyPI", "2.1", events) == (True, "2.5", None)
    assert affected_by_ranges("PyPI", "3.0", events) == (False, None, "2.5")
    last = [{"introduced": "1.0"}, {"last_affected": "1.4"}]
    assert affected_by_ranges("PyPI", "1.4", last)[0] is True
    assert affected_by_ranges("PyPI", "1.4.1", last)[0] is False
    assert affected_by_ranges("PyPI", "0.9", last)[0] is False
    # Unsorted events are sorted first (OSV schema, "Evaluation").
    assert affected_by_ranges("npm", "1.5.0", [{"fixed": "2.0.0"}, {"introduced": "1.0.0"}]) == (
        True,
        "2.0.0",
        None,
    )


def test_huge_digit_runs_order_without_int() -> None:
    """Python's int() refuses more than 4,300 digits; a version comes from the scanned image."""
    big = "9" * 5000
    assert compare("Debian:12", f"1.{big}", f"1.1{big}") < 0
    assert compare("Debian:12", f"1.0{big}", f"1.{big}") == 0  # leading zeros do not count
    assert compare("Debian:12", f"{big}:1.0", "1:2.0") > 0
