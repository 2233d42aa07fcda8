"""Contributor signals: an author with no commit before the range who changes build, CI or release
files. Never a finding that counts on its own: it multiplies the weight of the others in those files."""

from __future__ import annotations

from collections.abc import Iterator

from bastion.review._model import Confidence, Hit, Rule, Severity
from bastion.review._rules._integrity import is_build_file
from bastion.review._rules._supply import is_ci_file

NEW_AUTHOR = Rule(
    "CT001", "contributors", Severity.INFO, Confidence.MEDIUM,
    "An author with no earlier commit changed build, CI or release files: the findings in those files "
    "weigh more (the xz-utils maintainer takeover, CVE-2024-3094).",
)  # fmt: skip
RULES = (NEW_AUTHOR,)


def sensitive(path: str) -> bool:
    return (
        is_build_file(path) or is_ci_file(path) or path.startswith(("release", "scripts/release", "debian/"))
    )


def check(commits: list[tuple[str, str, list[str]]], known: set[str]) -> Iterator[tuple[Hit, set[str]]]:
    """(finding, files the new author touched) for each new author touching sensitive files."""
    touched: dict[str, tuple[str, set[str]]] = {}
    for email, name, paths in commits:
        if email in known:
            continue
        entry = touched.setdefault(email, (name, set()))
        entry[1].update(paths)
    for email, (name, files) in sorted(touched.items()):
        risky = sorted(f for f in files if sensitive(f))
        if risky:
            yield Hit(NEW_AUTHOR, risky[0], 1, "", f"{name} <{email}>", f"first commit in this range; touched "
                      f"{', '.join(risky[:5])}"), set(files)  # fmt: skip
