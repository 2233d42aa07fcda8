"""Contributor signals: an author with no commit before the range, or whose first commit is less than
:data:`RECENT_DAYS` days older than the range's start (the newest commit before it), who changes build,
CI or release files. Never a finding that counts on its own: it multiplies the weight of the others in
those files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from bastion.review._model import Confidence, Hit, Rule, Severity
from bastion.review._rules._integrity import is_build_file
from bastion.review._rules._supply import is_ci_file

NEW_AUTHOR = Rule(
    "CT001", "contributors", Severity.INFO, Confidence.MEDIUM,
    "An author with no earlier commit, or one added to the project recently, changed build, CI or release "
    "files: the findings in those files weigh more (the xz-utils maintainer takeover, CVE-2024-3094).",
    version=2,
)  # fmt: skip
#: An author whose first commit is at most this many days older than the range's start counts as
#: recently added (issue 22: "a first-time or recently-added contributor").
RECENT_DAYS = 90
RULES = (NEW_AUTHOR,)


def sensitive(path: str) -> bool:
    return (
        is_build_file(path) or is_ci_file(path) or path.startswith(("release", "scripts/release", "debian/"))
    )


def check(
    commits: list[tuple[str, str, list[str]]], known: tuple[Mapping[str, int], int]
) -> Iterator[tuple[Hit, set[str]]]:
    """(finding, files the author touched) for each new or recently added author (``known``: each
    earlier author's first commit time, and the time of the range's start) touching sensitive files."""
    first, start = known
    touched: dict[str, tuple[str, set[str]]] = {}
    for email, name, paths in commits:
        if email in first and start - first[email] > RECENT_DAYS * 86400:
            continue
        entry = touched.setdefault(email, (name, set()))
        entry[1].update(paths)
    for email, (name, files) in sorted(touched.items()):
        risky = sorted(f for f in files if sensitive(f))
        if risky:
            when = ("first commit in this range" if email not in first else
                    f"first commit {(start - first[email]) // 86400} days before this range")  # fmt: skip
            yield Hit(NEW_AUTHOR, risky[0], 1, "", f"{name} <{email}>", f"{when}; touched "
                      f"{', '.join(risky[:5])}"), set(files)  # fmt: skip
