"""The changelog entry Bastion adds to a source package it rebuilds (Debian Policy §4.4).

The entry's version is ``<debian version>+bastion<N>``: it sorts after the version rebuilt (Policy
§5.6.12: ``+`` follows the end of a version) and before Debian's next upload of it, so apt prefers
Bastion's build until Debian moves on. Its date is the date of the entry it follows, so that the entry,
and ``SOURCE_DATE_EPOCH`` taken from it, are the same in every rebuild of the same inputs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from bastion.errors import IntegrityError

__all__ = ["MAINTAINER", "ChangelogFacts", "bastion_version", "changelog_entry", "parse_facts"]

#: Who the entry is from (Policy §4.4: "-- maintainer name <email address>").
MAINTAINER = "Bastion <builder@bastion.invalid>"
_DISTRIBUTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
_MARK = "bastion-changelog:"


@dataclass(frozen=True)
class ChangelogFacts:
    """What the unpacked package's own changelog says of its newest entry."""

    timestamp: int  # seconds since the epoch: SOURCE_DATE_EPOCH
    distribution: str


def bastion_version(version: str, revision: int) -> str:
    return f"{version}+bastion{revision}"


def parse_facts(lines: Sequence[str], *, where: str) -> ChangelogFacts:
    """The facts the unpack step printed (``bastion-changelog: <timestamp> <distribution>``, from
    ``dpkg-parsechangelog`` in the sandbox), checked: they come from the untrusted package."""
    for line in reversed(lines):
        if line.startswith(_MARK):
            words = line.removeprefix(_MARK).split()
            if (
                len(words) == 2
                and words[0].isdigit()
                and _DISTRIBUTION.match(words[1])
                and len(words[1]) < 64
            ):
                return ChangelogFacts(int(words[0]), words[1])
            break
    raise IntegrityError("the package's debian/changelog has no readable newest entry", where=where)


#: The shell command that prints the facts, run in the unpacked tree.
FACTS_COMMAND = f'printf "{_MARK} %s %s\\n" "$(dpkg-parsechangelog -S Timestamp)" "$(dpkg-parsechangelog -S Distribution)"'


def changelog_entry(
    source: str, version: str, facts: ChangelogFacts, reason: str, changes: Sequence[str]
) -> str:
    """The entry, as Policy §4.4 lays it out, followed by the blank line that separates it from the next."""
    when = format_datetime(datetime.fromtimestamp(facts.timestamp, tz=UTC))
    # Policy §4.4: "package (version) distribution(s); urgency=urgency", change lines indented two spaces
    # with "* ", the trailer " -- maintainer  date" with two spaces before the RFC 5322 date.
    lines = [f"{source} ({version}) {facts.distribution}; urgency=medium", "", f"  * {reason}"]
    lines += [f"  * {change}" for change in changes]
    lines += ["", f" -- {MAINTAINER}  {when}", "", ""]
    return "\n".join(lines)
