"""The changelog entry of a rebuild: Policy §4.4's layout, read back by dpkg's own parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from debian.changelog import Changelog

from bastion.errors import IntegrityError
from bastion.source import MAINTAINER, ChangelogFacts, bastion_version, changelog_entry, parse_facts

_PREVIOUS = """zlib (1:1.2.13.dfsg-1) unstable; urgency=medium

  * New upstream release.

 -- Mark Brown <broonie@debian.org>  Sat, 05 Nov 2022 12:24:46 +0000
"""


def _entry() -> str:
    facts = ChangelogFacts(1667651086, "unstable")
    version = bastion_version("1:1.2.13.dfsg-1", 3)
    return changelog_entry(
        "zlib", version, facts, "Rebuild by Bastion", ["Apply p.patch (fixes CVE-2099-0001)"]
    )


def test_the_entry_is_policy_4_4_and_sorts_after_debian() -> None:
    text = _entry()
    assert text.splitlines()[0] == "zlib (1:1.2.13.dfsg-1+bastion3) unstable; urgency=medium"
    assert f" -- {MAINTAINER}  Sat, 05 Nov 2022 12:24:46 +0000" in text.splitlines()
    changelog = Changelog(text + _PREVIOUS, strict=True)
    newest, previous = list(changelog)[:2]
    assert str(newest.version) == "1:1.2.13.dfsg-1+bastion3" and newest.version > previous.version
    assert newest.changes()[1:3] == ["  * Rebuild by Bastion", "  * Apply p.patch (fixes CVE-2099-0001)"]
    assert newest.date == previous.date  # dated as the entry it follows: reproducible


@pytest.mark.skipif(shutil.which("dpkg-parsechangelog") is None, reason="needs dpkg-dev")
def test_dpkg_parsechangelog_reads_the_entry(tmp_path: Path) -> None:
    (tmp_path / "changelog").write_text(_entry() + _PREVIOUS)
    fields = {
        field: subprocess.run(["dpkg-parsechangelog", "-l", str(tmp_path / "changelog"), "-S", field],
                              capture_output=True, text=True, check=True).stdout.strip()
        for field in ("Version", "Timestamp", "Maintainer", "Distribution")
    }  # fmt: skip
    assert fields == {"Version": "1:1.2.13.dfsg-1+bastion3", "Timestamp": "1667651086", "Maintainer": MAINTAINER,
                      "Distribution": "unstable"}  # fmt: skip


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["bastion-changelog: soon unstable"],
        ["bastion-changelog: 1 unstable;rm"],
        ["bastion-changelog: 1"],
    ],
)
def test_unreadable_changelog_facts_are_refused(lines: list[str]) -> None:
    with pytest.raises(IntegrityError, match="no readable newest entry"):
        parse_facts(lines, where="source zlib: unpack")
