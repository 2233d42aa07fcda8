"""Resolver rules on small indices written in the Packages format (offline)."""

from __future__ import annotations

import pytest

from bastion.debian import PackageIndex, resolve
from bastion.debian._index import ParsedIndex, _rows, parse_packages
from bastion.errors import ResolutionError

_SHA = "0" * 64


def _index(text: str, arch: str = "amd64") -> PackageIndex:
    stanzas = []
    for block in text.strip().split("\n\n"):
        name = next(line.split(": ", 1)[1] for line in block.splitlines() if line.startswith("Package: "))
        extra = "" if "Architecture:" in block else "Architecture: amd64\n"
        stanzas.append(f"{block}\n{extra}Filename: pool/{name}.deb\nSize: 1\nSHA256: {_SHA}\n")
    index = PackageIndex(arch)
    index.add_rows(
        parse_packages("\n".join(stanzas).encode(), where="test"), "http://mirror.example/debian", "test"
    )
    return index


def test_highest_version_across_suites_wins_with_epochs_and_tilde() -> None:
    index = _index(
        "Package: a\nVersion: 1.0\n\nPackage: a\nVersion: 1:0.1\n\nPackage: a\nVersion: 1:0.1~rc1\n\n"
        "Package: b\nVersion: 2.0~beta\n\nPackage: b\nVersion: 1.9"
    )
    result = resolve(index, ["a", "b"])
    assert {p.name: p.version for p in result.packages} == {"a": "1:0.1", "b": "2.0~beta"}


def test_alternatives_prefer_selected_then_first_installable() -> None:
    index = _index(
        "Package: app\nVersion: 1\nDepends: missing | second, third | fourth\n\n"
        "Package: second\nVersion: 1\n\nPackage: third\nVersion: 1\n\nPackage: fourth\nVersion: 1"
    )
    result = resolve(index, ["app", "fourth"])
    assert result.names() == ["app", "fourth", "second"]
    assert result.path("second") == ["app", "second"]


def test_virtual_package_picks_provider_by_priority() -> None:
    index = _index(
        "Package: base\nVersion: 1\nPre-Depends: awk\n\n"
        "Package: gawk\nVersion: 1\nProvides: awk\nPriority: optional\n\n"
        "Package: mawk\nVersion: 1\nProvides: awk\nPriority: required"
    )
    assert resolve(index, ["base"]).names() == ["base", "mawk"]


def test_versioned_provides_and_any_qualifier() -> None:
    index = _index(
        "Package: app\nVersion: 1\nDepends: python3:any (>= 3.11), libfoo-abi (= 2)\n\n"
        "Package: python3\nVersion: 3.11.2-1\nMulti-Arch: allowed\n\n"
        "Package: libfoo2\nVersion: 2.0\nProvides: libfoo-abi (= 2)\n\n"
        "Package: libfoo1\nVersion: 1.0\nProvides: libfoo-abi (= 1)"
    )
    assert resolve(index, ["app"]).names() == ["app", "libfoo2", "python3"]


def test_architecture_all_packages_are_candidates() -> None:
    index = _index("Package: app\nVersion: 1\nDepends: data\n\nPackage: data\nVersion: 1\nArchitecture: all")
    result = resolve(index, ["app"])
    assert [(p.name, p.architecture) for p in result.packages] == [("app", "amd64"), ("data", "all")]


def test_essential_packages_are_never_assumed() -> None:
    index = _index("Package: app\nVersion: 1\n\nPackage: bash\nVersion: 5\nEssential: yes")
    assert resolve(index, ["app"]).names() == ["app"]


def test_exclusion_skips_alternative_and_drops_sole_relation() -> None:
    index = _index(
        "Package: base\nVersion: 1\nPre-Depends: awk\nDepends: mawk | gawk\n\n"
        "Package: mawk\nVersion: 1\nProvides: awk\nPriority: required\n\n"
        "Package: gawk\nVersion: 1\nProvides: awk"
    )
    result = resolve(index, ["base", "!mawk", "!gawk"])
    assert result.names() == ["base"]
    assert [(d.relation, d.because) for d in result.dropped] == [
        ("awk", "excluded (every provider of awk)"),
        ("mawk | gawk", "excluded (!mawk, !gawk)"),
    ]
    assert resolve(index, ["base", "!mawk"]).names() == ["base", "gawk"]


def test_prune_list_drops_maintainer_script_dependencies() -> None:
    index = _index(
        "Package: tzdata\nVersion: 1\nDepends: debconf (>= 0.5) | debconf-2.0\n\nPackage: debconf\nVersion: 1.5"
    )
    result = resolve(index, ["tzdata"])
    assert result.names() == ["tzdata"]
    assert [d.because for d in result.dropped] == ["prune list (debconf, debconf-2.0)"]
    assert resolve(index, ["tzdata"], prune=frozenset()).names() == ["debconf", "tzdata"]


def test_unmet_relation_names_package_relation_and_what_is_available() -> None:
    index = _index("Package: app\nVersion: 1\nDepends: lib (>= 2)\n\nPackage: lib\nVersion: 1.5")
    with pytest.raises(ResolutionError) as caught:
        resolve(index, ["app"])
    text = caught.value.diagnostic()
    assert "app 1 Depends 'lib (>= 2)'" in text and "versions 1.5" in text


def test_missing_requested_package() -> None:
    with pytest.raises(ResolutionError, match=r"nope.*no such package"):
        resolve(_index("Package: app\nVersion: 1"), ["nope"])


def test_pinned_request() -> None:
    index = _index("Package: a\nVersion: 2\n\nPackage: a\nVersion: 1")
    assert [p.version for p in resolve(index, ["a=1"]).packages] == ["1"]


@pytest.mark.parametrize("size", [1, 7, 64, 4096])
def test_packages_parsed_in_chunks_as_whole(size: int) -> None:
    """Issue 19: a Packages file streams through the parser in chunks cut anywhere (even inside a
    multi-byte character); what it yields does not depend on where."""
    text = (
        "Package: a\nVersion: 1\nArchitecture: all\nDescription: caf\u00e9\n d\u00e9tail\nFilename: a.deb\n"
        f"Size: 1\nSHA256: {_SHA}\n\nPackage: b\nVersion: 2\nArchitecture: amd64\nProvides: v (= 1)\n"
        f"Essential: yes\nFilename: b.deb\nSize: 2\nSHA256: {_SHA}\n"
    ).encode()
    whole = parse_packages(text, where="test")
    chunks = [text[i : i + size] for i in range(0, len(text), size)]

    assert list(_rows(chunks, where="test")) == whole and [r[0] for r in whole] == ["a", "b"]
    parsed = ParsedIndex.from_rows(whole)
    assert parsed.essential == ["b"] and parsed.provides == {"v": ["b"]}
