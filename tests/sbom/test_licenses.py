"""Debian copyright files to SPDX expressions: the DEP-5 syntax on small inputs, then the real copyright
files of bookworm packages (the python image's runtime packages, fetched through the test cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

from bastion.cache import Cache
from bastion.config import Settings
from bastion.debian import DebArchive
from bastion.sbom import License, parse_copyright
from bastion.sbom._licenses import copyright_licenses, is_valid_expression

FORMAT = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"


def dep5(*paragraphs: str) -> str:
    return FORMAT + "\n\n".join(paragraphs) + "\n"


def expressions(text: str, package: str | None = None) -> list[str]:
    return [licence.expression for licence in parse_copyright(text, package=package)]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("LGPL-2", "LGPL-2.0-only"),
        ("GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"),
        ("Expat", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("Artistic", "Artistic-1.0-Perl"),
        ("Perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
        ("Apache-2.0", "Apache-2.0"),
        ("Apache-2", "Apache-2.0"),
        ("MPL-2.0", "MPL-2.0"),
        ("zlib", "Zlib"),
        ("Artistic or GPL-1+", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
        ("Sleepycat and BSD-3-clause", "Sleepycat AND BSD-3-Clause"),
        # DEP-5: "and" binds tighter than "or"; ", and" looser.
        ("MIT or GPL-2+ and BSD-3-clause", "MIT OR (GPL-2.0-or-later AND BSD-3-Clause)"),
        ("MIT or GPL-2+, and BSD-3-clause", "(MIT OR GPL-2.0-or-later) AND BSD-3-Clause"),
        ("GPL-2+ with Texinfo exception", "GPL-2.0-or-later WITH Texinfo-exception"),
        ("GPL-3+ with Autoconf exception", "GPL-3.0-or-later WITH Autoconf-exception-3.0"),
        ("GPL-2+ with Libtool exception or MIT", "GPL-2.0-or-later WITH Libtool-exception OR MIT"),
    ],
)
def test_dep5_names_and_operators(field: str, expected: str) -> None:
    result = expressions(dep5(f"Files: *\nCopyright: someone\nLicense: {field}"))
    assert result == [expected]
    assert is_valid_expression(expected)


def test_unknown_licence_becomes_licenseref_with_standalone_text() -> None:
    text = dep5(
        "Files: *\nCopyright: someone\nLicense: BSD-variant or GPL-2+",
        "License: BSD-variant\n Redistribution is allowed.\n .\n Really.",
    )
    (licence,) = parse_copyright(text)
    assert licence == License(
        expression="LicenseRef-BSD-variant OR GPL-2.0-or-later",
        text="Redistribution is allowed.\n\nReally.",
        name="BSD-variant",
    )


def test_two_unknown_licences_become_one_licenseref() -> None:
    # An expression carries at most one LicenseRef, so that License.text is unambiguously its text.
    text = dep5(
        "Files: *\nCopyright: x\nLicense: foo or bar+",
        "License: foo\n Foo terms.",
        "License: bar+\n Bar terms.",
    )
    (licence,) = parse_copyright(text)
    assert licence.expression == "LicenseRef-foo-or-barplus"
    assert licence.text is not None and "Foo terms." in licence.text and "Bar terms." in licence.text


def test_deduplicated_and_sorted() -> None:
    text = dep5(
        "Files: *\nCopyright: x\nLicense: Zlib",
        "Files: a/*\nCopyright: y\nLicense: Expat",
        "Files: b/*\nCopyright: z\nLicense: MIT",
        "Files: c/*\nCopyright: z\nLicense: Apache-2.0",
    )
    assert expressions(text) == ["Apache-2.0", "MIT", "Zlib"]


def test_free_text_is_kept_not_guessed() -> None:
    text = (
        "This is a package.\n\nIt is under the GNU General Public License, version 3.\n"
        "See /usr/share/common-licenses/GPL-3.\n\nSome parts are under /usr/share/common-licenses/GPL.\n"
    )
    (licence,) = parse_copyright(text, package="foo")
    assert licence.expression == "LicenseRef-foo-free-text"
    assert licence.text == text.strip()
    # No package name given: a generic name.
    assert expressions(text) == ["LicenseRef-copyright-free-text"]


def test_free_text_recognises_an_explicit_or_later_grant() -> None:
    text = (
        "Copyright 2020 Someone\n\n   This library is free software; you can redistribute it under the\n"
        "   terms of the GNU Lesser General Public License as published by the FSF; either\n"
        "   version 2.1 of the License, or (at your option) any later version.\n\n"
        "On Debian systems the licence is in `/usr/share/common-licenses/LGPL-2.1'.\n"
    )
    assert expressions(text, "libx") == ["LGPL-2.1-or-later", "LicenseRef-libx-free-text"]


# -- real bookworm copyright files ---------------------------------------------------------------------

PACKAGES = ("libc6", "libssl3", "zlib1g", "python3.11", "tzdata", "ca-certificates", "libsqlite3-0", "libffi8",
            "libexpat1", "netbase", "libdb5.3", "media-types")  # fmt: skip


@pytest.fixture(scope="module")
def copyrights(cached_home: Path) -> dict[str, str]:
    """/usr/share/doc/<pkg>/copyright of the python image's runtime packages (amd64), from their .debs."""
    definition = REPO_ROOT / "catalog" / "python" / "python.yaml"
    result = run_cli("fetch", str(definition), "--locked", "--variant", "runtime", "--platform", "linux/amd64",
                     home=cached_home)  # fmt: skip
    assert result.code == 0, result.stderr
    lock = json.loads(definition.with_name("python.lock.json").read_text())
    cache = Cache(Settings(home=cached_home).cache_dir)
    texts: dict[str, str] = {}
    for entry in lock["variants"]["runtime"]["linux/amd64"]["packages"]:
        if entry["name"] not in PACKAGES:
            continue
        path = cache.lookup(entry["sha256"])
        assert path is not None, entry["name"]
        with DebArchive(path) as deb:
            for item, stream in deb.iter_data():
                if item.path == f"usr/share/doc/{entry['name']}/copyright" and stream is not None:
                    texts[entry["name"]] = stream.read().decode()
    assert sorted(texts) == sorted(PACKAGES)
    return texts


REAL = {
    "zlib1g": ["Zlib"],
    "libexpat1": ["MIT"],
    "tzdata": ["LicenseRef-public-domain"],
    "libsqlite3-0": ["GPL-2.0-or-later", "LicenseRef-public-domain"],
    "libssl3": ["Apache-2.0", "Artistic-1.0-Perl OR GPL-1.0-or-later"],
    "ca-certificates": ["GPL-2.0-or-later", "MPL-2.0"],
    "netbase": ["GPL-2.0-only"],
    "media-types": ["LicenseRef-ad-hoc"],
    "libffi8": [
        "GPL-2.0-or-later",
        "GPL-3.0-or-later",
        # license-expression reads "LicenseRef-GPL" as an alias of GPL-1.0-or-later: kept apart.
        "LicenseRef-GPL-text",
        "LicenseRef-public-domain",
        "MIT",
        "MPL-1.1 OR GPL-2.0-or-later OR LGPL-2.1-or-later",
        "X11",
    ],
    # Free text: the whole file kept; the two "version N ... any later version" grants recognised.
    "libc6": ["GPL-2.0-or-later", "LGPL-2.1-or-later", "LicenseRef-libc6-free-text"],
    "python3.11": ["GPL-2.0-or-later", "LicenseRef-python3.11-free-text"],
}


@pytest.mark.mirror
@pytest.mark.parametrize("package", sorted(REAL))
def test_real_copyright_files(copyrights: dict[str, str], package: str) -> None:
    licences = parse_copyright(copyrights[package], package=package)
    assert [licence.expression for licence in licences] == REAL[package]
    for licence in licences:
        assert is_valid_expression(licence.expression), licence.expression
        if "LicenseRef-" in licence.expression:
            assert licence.text, f"{package}: {licence.expression} has no text"


@pytest.mark.mirror
def test_real_licenseref_texts(copyrights: dict[str, str]) -> None:
    (tzdata,) = parse_copyright(copyrights["tzdata"], package="tzdata")
    assert tzdata.text == "This database is in the public domain."
    libc = {item.expression: item for item in parse_copyright(copyrights["libc6"], package="libc6")}
    assert libc["LicenseRef-libc6-free-text"].text == copyrights["libc6"].strip()
    db = {item.expression: item for item in parse_copyright(copyrights["libdb5.3"], package="libdb5.3")}
    assert "Sleepycat AND BSD-3-Clause" in db
    assert "Artistic-1.0-Perl OR BSD-3-Clause" in db
    assert db["LicenseRef-BSD-3-clause-fjord"].text


@pytest.mark.mirror
def test_kept_licences_are_the_parsed_ones(
    copyrights: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every real copyright file gives the same licences from the cache as parsed, and a kept result
    that is damaged, or was kept by another parser, is not used."""
    from bastion.sbom import _licenses

    parsed = {name: parse_copyright(text, package=name) for name, text in copyrights.items()}
    for name, text in copyrights.items():
        assert copyright_licenses(text, package=name, cache_dir=tmp_path) == parsed[name]
    kept = sorted((tmp_path / "licenses").rglob("*.json"))
    assert len(kept) == len(copyrights)

    def no_parsing(text: str, *, package: str | None = None) -> list[License]:
        raise AssertionError("parsed again")

    with monkeypatch.context() as patch:
        patch.setattr(_licenses, "parse_copyright", no_parsing)
        for name, text in copyrights.items():
            assert copyright_licenses(text, package=name, cache_dir=tmp_path) == parsed[name]
    # Damaged: a truncated record, and one whose content was changed without its check.
    kept[0].write_bytes(kept[0].read_bytes()[:20])
    record = json.loads(kept[1].read_bytes())
    record["licenses"][0]["expression"] = "MIT"
    kept[1].write_text(json.dumps(record))
    for name, text in copyrights.items():
        assert copyright_licenses(text, package=name, cache_dir=tmp_path) == parsed[name]
    for path in kept:  # both damaged records were replaced by whole ones
        record = json.loads(path.read_bytes())
        assert record["check"] == _licenses._check(path.stem, record["licenses"]), path
    # Another parser (new code or licence list): nothing kept by this one is used.
    with monkeypatch.context() as patch:
        patch.setattr(_licenses, "_parser_identity", lambda: "another parser")
        calls: list[str] = []
        real = _licenses.parse_copyright

        def counting(text: str, *, package: str | None = None) -> list[License]:
            calls.append(package or "")
            return real(text, package=package)

        patch.setattr(_licenses, "parse_copyright", counting)
        assert (
            copyright_licenses(copyrights["zlib1g"], package="zlib1g", cache_dir=tmp_path) == parsed["zlib1g"]
        )
        assert calls == ["zlib1g"]


def test_unwritable_cache_only_costs_the_parsing(tmp_path: Path) -> None:
    text = FORMAT + "Files: *\nCopyright: 2024 Someone\nLicense: Expat\n"
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert copyright_licenses(text, package="p", cache_dir=blocked) == parse_copyright(text, package="p")
