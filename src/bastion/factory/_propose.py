"""Detect -> propose: a tracker's new values written into the definition, the lock refreshed.

A variable's new value replaces its ``value:`` in the definition's text (only there: the rest of the
file, comments included, is kept byte for byte), the definition is loaded again with it (the
templating of :mod:`bastion.catalog` substitutes it, and the field's own checks apply), and the lock
is resolved afresh with :func:`bastion.lock.plan`. Nothing is written until the review gate
approves: :meth:`Proposal.apply` writes both files atomically, as a reviewer's merge would.

The recipe digest keys the job (issue 20 item 5): SHA-256 over the proposed definition text and lock.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion._atomic import atomic_write
from bastion.catalog import Definition, load_definition
from bastion.config import Settings
from bastion.errors import BastionError

__all__ = ["Proposal", "propose"]

_MAX_DIFF = 256 * 1024


@dataclass(frozen=True)
class Proposal:
    image: str
    path: Path
    text: str
    lock_text: str
    diff: str
    recipe: str
    packages_only: bool
    """Only package versions move (the lock; a debian-package tracker's variable): auto-approvable."""

    def apply(self) -> None:
        """Write the proposed definition and lock (each atomically; the lock last)."""
        from bastion.lock import lock_path

        if self.path.read_text(encoding="utf-8") != self.text:
            atomic_write(self.path, self.text.encode("utf-8"), prefix=f".{self.path.name}.")
        if self.lock_text:
            atomic_write(lock_path(self.path), self.lock_text.encode("utf-8"), prefix=f".{self.path.name}.")

    def definition(self) -> Definition:
        return load_definition(self.path)


def _rewrite(text: str, name: str, old: str, new: str, where: str) -> str:
    """``text`` with variable ``name``'s ``value: old`` made ``value: new`` (flow or block style)."""
    pattern = re.compile(
        rf"(\b{re.escape(name)}\s*:\s*\{{?\s*value\s*:\s*)(['\"]?){re.escape(old)}\2(?=\s*[,}}\n#]|\s*$)"
    )
    found = list(pattern.finditer(text))
    if len(found) != 1:
        raise BastionError(f"cannot find variable {name}'s value {old!r} to change", where=where)
    match = found[0]
    quote = match.group(2) or "'"
    return text[: match.start()] + match.group(1) + quote + new + quote + text[match.end() :]


def propose(
    path: Path,
    changes: Mapping[str, tuple[str, str]],
    settings: Settings,
    *,
    trackers_only_packages: bool,
    after: Sequence[str] = (),
) -> Proposal | None:
    """The proposal of ``changes`` (variable -> (written, now)) to the definition at ``path``, with
    its lock resolved afresh; None when nothing would change (the lock already holds the newest).
    ``after``: the recipes of the upstream images being rebuilt first (a cascade), which are part
    of this recipe, so the rebuild happens even when this definition does not change."""
    from bastion.factory._pipeline import resolve_lock
    from bastion.lock import lock_path

    before = path.read_text(encoding="utf-8")
    text = before
    for name, (old, new) in sorted(changes.items()):
        text = _rewrite(text, name, old, new, str(path))
    values = {name: new for name, (_old, new) in changes.items()}
    definition = load_definition(path, variables=values)
    lock_file = lock_path(path)
    lock_before = lock_file.read_text(encoding="utf-8") if lock_file.is_file() else ""
    # A from: image whose base is not built yet keeps its lock: its job resolves it on that base.
    lock_text = resolve_lock(definition, settings, update=True) or lock_before
    if text == before and _packages(lock_text) == _packages(lock_before) and not after:
        return None
    diff = "".join(
        [
            *difflib.unified_diff(before.splitlines(True), text.splitlines(True), str(path), str(path)),
            *_lock_diff(lock_before, lock_text, str(lock_file)),
        ]
    )[:_MAX_DIFF]
    upstream = "\0".join(sorted(after)).encode()
    recipe = (
        "sha256:" + hashlib.sha256(text.encode() + b"\0" + lock_text.encode() + b"\0" + upstream).hexdigest()
    )
    return Proposal(definition.name, path, text, lock_text, diff, recipe, trackers_only_packages)


def _packages(lock_text: str) -> set[tuple[str, str, str, str, str]]:
    if not lock_text:
        return set()
    lock = json.loads(lock_text)
    return {
        (variant, platform, p["name"], p["architecture"], p["version"])
        for variant, platforms in lock.get("variants", {}).items()
        for platform, locked in platforms.items()
        for p in locked.get("packages", [])
    }


def _lock_diff(before: str, after: str, where: str) -> list[str]:
    """The packages that moved, one line each: what a reviewer reads (the JSON diff would bury it)."""
    old = {(v, p, n, a): ver for v, p, n, a, ver in _packages(before)}
    new = {(v, p, n, a): ver for v, p, n, a, ver in _packages(after)}
    lines = [f"--- {where}\n+++ {where}\n"] if old != new else []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            variant, platform, name, _arch = key
            lines.append(
                f" {variant} {platform} {name}: {old.get(key, '(none)')} -> {new.get(key, '(none)')}\n"
            )
    return lines
