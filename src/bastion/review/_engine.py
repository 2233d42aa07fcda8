"""Review one change: read both versions, diff each changed file, run the rules over both syntax trees
and keep only what the change introduced (matched by rule, function and normalised text, never by line)."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from bastion.review._model import NEW_CONTRIBUTOR_MULTIPLIER, Finding, Hit, Review
from bastion.review._rules import (
    RULES,
    _checks,
    _contributors,
    _errors,
    _flow,
    _integrity,
    _resources,
    _supply,
)
from bastion.review._snapshot import Entry, Git, Snapshot
from bastion.review._syntax import Source, language_of, parse


@dataclass
class _File:
    path: str
    old: bytes | None
    new: bytes
    hunks: list[tuple[int, int, str]]  # (first new line, last new line, hunk text)
    added: list[tuple[int, str]]
    changed_lines: int


def review_diff(old: Snapshot, new: Snapshot, *, git: Git | None = None) -> Review:
    """Review the change from ``old`` to ``new`` (see docs/guardrail.md for the rules and the score)."""
    notes = [*old.notes, *new.notes]
    changed = sorted(p for p, e in new.entries.items() if p not in old.entries or old.entries[p].oid != e.oid)
    deleted = sorted(set(old.entries) - set(new.entries))
    new_data = new.read([new.entries[p] for p in changed])
    old_data = old.read([old.entries[p] for p in changed if p in old.entries])
    files = [_file(p, old_data.get(p), new_data[p]) for p in changed]
    hits: list[Hit] = []
    for f in files:
        entry = new.entries[f.path]
        if entry.link is not None:
            notes.append(f"{f.path}: symbolic link to {entry.link!r}, not followed")
            continue
        hits.extend(_file_hits(f, notes))
    hits.extend(_tristate_hits(files))
    if old.kind == "git" and new.kind == "tarball":
        hits.extend(_release_hits(old, new))
    findings = [_finding(h, files) for h in hits]
    if git is not None and old.commit and new.commit:
        for signal, touched in _contributors.check(git.log(old.commit, new.commit), git.authors(old.commit)):
            findings = [replace(x, multiplier=NEW_CONTRIBUTOR_MULTIPLIER) if x.path in touched else x
                        for x in findings]  # fmt: skip
            findings.append(_finding(signal, files))
    if deleted:
        notes.append(f"{len(deleted)} file(s) deleted")
    findings.sort(key=lambda x: (-x.contribution, x.path, x.line, x.rule.id))
    return Review(old.label, new.label, len(changed) + len(deleted), sum(f.changed_lines for f in files),
                  RULES, tuple(findings), tuple(notes))  # fmt: skip


#: Above this many lines on either side, a file's added lines are found by counting alone (difflib's
#: matching grows faster than linearly with the lines that differ); the file gets no hunks.
MAX_DIFF_LINES = 20_000


def _file(path: str, old: bytes | None, new: bytes) -> _File:
    if _integrity.is_binary(new) or (old is not None and _integrity.is_binary(old)):
        return _File(path, old, new, [], [], 0)
    old_lines = old.decode("utf-8").splitlines() if old is not None else []
    new_lines = new.decode("utf-8").splitlines()
    if max(len(old_lines), len(new_lines)) > MAX_DIFF_LINES:
        return _counted(path, old, new, old_lines, new_lines)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    added: list[tuple[int, str]] = []
    changed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changed += (i2 - i1) + (j2 - j1)
            added.extend((j + 1, new_lines[j]) for j in range(j1, j2))
    # A line moved, not added, is no new line: keep only those beyond the old version's count.
    budget = Counter(" ".join(line.split()) for line in new_lines) - Counter(
        " ".join(line.split()) for line in old_lines
    )
    kept = []
    for line, text in added:
        key = " ".join(text.split())
        if budget[key] > 0:
            budget[key] -= 1
            kept.append((line, text))
    hunks = []
    for group in matcher.get_grouped_opcodes(3):
        j1, j2 = group[0][3], group[-1][4]
        i1, i2 = group[0][1], group[-1][2]
        body = [f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@"]
        for op, a1, a2, b1, b2 in group:
            if op == "equal":
                body.extend(f" {x}" for x in old_lines[a1:a2])
                continue
            body.extend(f"-{x}" for x in old_lines[a1:a2])
            body.extend(f"+{x}" for x in new_lines[b1:b2])
        hunks.append((j1 + 1, max(j2, j1 + 1), "\n".join(body)))
    return _File(path, old, new, hunks, kept, changed)


def _counted(path: str, old: bytes | None, new: bytes, old_lines: list[str], new_lines: list[str]) -> _File:
    budget = Counter(" ".join(line.split()) for line in new_lines)
    budget.subtract(" ".join(line.split()) for line in old_lines)
    added = []
    for number, text in enumerate(new_lines, 1):
        key = " ".join(text.split())
        if budget[key] > 0:
            budget[key] -= 1
            added.append((number, text))
    removed = sum(-n for n in budget.values() if n < 0)
    return _File(path, old, new, [], added, len(added) + removed)


def _file_hits(f: _File, notes: list[str]) -> list[Hit]:
    hits: list[Hit] = list(_integrity.check_blob(f.path, f.new))
    if _integrity.is_binary(f.new):
        notes.append(f"{f.path}: binary file, {len(f.new)} bytes (not diffed)")
        return hits
    language = language_of(f.path, f.new)
    old_text = f.old.decode("utf-8") if f.old is not None and not _integrity.is_binary(f.old) else ""
    hits.extend(_integrity.check_lines(f.path, f.added, shell=language == "bash"))
    hits.extend(_supply.check_ci(f.path, f.added))
    hits.extend(_supply.check_dependencies(f.path, old_text, f.new.decode("utf-8")))
    if language is None:
        return hits
    new_src = parse(f.path, language, f.new)
    if new_src is None:
        notes.append(f"{f.path}: does not parse as {language}; analysed as text")
        return hits
    old_src = parse(f.path, language, f.old) if f.old is not None else None
    if new_src.partial:
        notes.append(f"{f.path}: parts do not parse as {language} (macros?); the rest analysed")
    new_hits = list(_syntax_hits(new_src))
    old_words = " ".join(old_text.split())
    if old_src is not None:
        seen = Counter(h.key for h in _syntax_hits(old_src))
        hits.extend(_checks.compare(old_src, new_src))
    else:
        seen = Counter()
    for h in new_hits:
        if seen[h.key] > 0:
            seen[h.key] -= 1
        elif old_src is None and f.old is not None and " ".join(h.text.split()) in old_words:
            continue  # the old version did not parse: what its text already had is not new
        else:
            hits.append(h)
    return hits


def _syntax_hits(src: Source) -> Iterable[Hit]:
    yield from _errors.check(src)
    yield from (h for h in _flow.check(src, frozenset()) if h.rule is not _flow.TRISTATE)  # _tristate_hits
    yield from _resources.check(src)


def _tristate_hits(files: list[_File]) -> list[Hit]:
    """Tri-state tests need every changed C file's functions: a verifier may be defined in another file."""
    sources = []
    for f in files:
        if f.path.endswith((".c", ".h")) and not _integrity.is_binary(f.new):
            src = parse(f.path, "c", f.new)
            old = parse(f.path, "c", f.old) if f.old is not None and not _integrity.is_binary(f.old) else None
            if src is not None:
                sources.append((src, old))
    tristate = frozenset(name for src, _ in sources for name in _flow.tristate_functions(src))
    found: list[Hit] = []
    for src, old in sources:
        seen = (
            Counter(h.key for h in _flow.check(old, tristate) if h.rule is _flow.TRISTATE)
            if old
            else Counter()
        )
        for h in _flow.check(src, tristate):
            if h.rule is not _flow.TRISTATE:
                continue
            if seen[h.key] > 0:
                seen[h.key] -= 1
            else:
                found.append(h)
    return found


def _release_hits(tag: Snapshot, tarball: Snapshot) -> list[Hit]:
    ignores = [e for p, e in tag.entries.items() if p == ".gitignore" or p.endswith("/.gitignore")]
    patterns: list[str] = []
    for path, data in tag.read(ignores).items():
        base = path[: -len(".gitignore")]
        for pattern in _integrity.gitignore_patterns(data.decode("utf-8", "replace")):
            patterns.append(f"{base}{pattern.lstrip('/')}" if base else pattern)
    tag_ids = {p: e.oid for p, e in tag.entries.items()}
    return list(_integrity.release_files(set(tag.entries), {p: e.oid for p, e in tarball.entries.items()},
                                         tag_ids, patterns))  # fmt: skip


def _finding(h: Hit, files: list[_File]) -> Finding:
    hunk = ""
    for f in files:
        if f.path == h.path:
            hunk = next((text for first, last, text in f.hunks if first <= h.line <= last), "")
            break
    return Finding(h.rule, h.path, h.line, h.function, " ".join(h.text.split()), h.detail, hunk)


__all__ = ["Entry", "review_diff"]
