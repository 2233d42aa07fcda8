"""Lock files on disk: where they live, writing them atomically, reading them, and whether one
still satisfies its definition.

A lock satisfies a definition when, for every variant of the definition:

* the variant asks for exactly what the lock's packages were resolved from: the same
  ``contents.packages`` (in the same order: exclusions and pins included), ``repositories``,
  ``keyring`` (as written), ``allow-expired`` and ``bastion-repository``; and
* the lock has an entry for every platform the variant lists.

Everything else in a definition (tests, paths, accounts, labels, tags, compliance, VEX) changes the
image but not which packages go into it, so editing it keeps the lock. Entries for variants or
platforms the definition no longer has do not matter (nothing builds them); ``bastion lock --update``
drops them. A lock written before it recorded what each variant was resolved from satisfies only the
definition whose normalised digest it names. A definition's ``from:`` is part of what it is resolved
from: the lock must name the same base image (``from.image``), or none when there is no ``from:``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bastion._atomic import atomic_write
from bastion.catalog import normalised_digest, parse_from
from bastion.documents import load_json
from bastion.errors import InputError, LockMismatchError
from bastion.lock._model import LOCK_VERSION, LockFile, Requested, RequestedRepository

if TYPE_CHECKING:
    from bastion.catalog import Definition, Variant

#: The largest lock file read: the python definition's two variants on two platforms take ~0.1 MB.
MAX_LOCK_BYTES = 64 << 20


def lock_path(definition_path: Path) -> Path:
    """``catalog/python/python.yaml`` → ``catalog/python/python.lock.json``."""
    return definition_path.with_name(definition_path.stem + ".lock.json")


def refresh_hint(definition_path: Path) -> str:
    return f"run 'bastion lock --update {definition_path}' to refresh it"


def write_lock(lock: LockFile, path: Path) -> None:
    """Write ``lock`` to ``path`` atomically: a complete file renamed over the old one, or nothing."""
    text = json.dumps(lock.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, text.encode("utf-8"), prefix=f".{path.name}.")


def read_lock(path: Path, *, definition_path: Path | None = None) -> LockFile:
    """The lock at ``path``; an :class:`InputError` naming it when it is missing or malformed."""
    hint = refresh_hint(definition_path) if definition_path is not None else None
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"no lock file at {path}", hint="run 'bastion lock' first") from None
    except OSError as exc:
        raise InputError(f"cannot read the lock file: {exc.strerror}", where=str(path)) from None
    value = load_json(data, where=str(path), max_bytes=MAX_LOCK_BYTES)
    try:
        lock = LockFile.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"malformed lock file: {field}: {first['msg']}", where=str(path), hint=hint
        ) from None
    if lock.lock_version != LOCK_VERSION:
        raise InputError(
            f"lock format version {lock.lock_version} is not supported (expected {LOCK_VERSION})",
            where=str(path),
            hint=hint,
        )
    return lock


def requested(variant: Variant) -> Requested:
    """What resolving ``variant`` depends on: its merged ``contents``."""
    contents = variant.contents
    repositories = (
        None
        if contents.repositories is None
        else [
            RequestedRepository(uri=r.uri, suites=list(r.suites), components=list(r.components))
            for r in contents.repositories
        ]
    )
    return Requested(
        packages=list(contents.packages),
        repositories=repositories,
        keyring=contents.keyring,
        allow_expired=contents.allow_expired,
        bastion_repository=contents.bastion_repository,
    )


def unsatisfied(definition: Definition, lock: LockFile) -> str | None:
    """Why ``lock`` does not satisfy ``definition`` (the rule is in this module's docstring), or None."""
    recorded = lock.resolved_from
    if (changed := _unrecorded_change(definition, lock) or _base_changed(definition, lock)) is not None:
        return changed
    for name in definition.variant_names():
        variant = definition.variant(name)
        entries = lock.variants.get(name)
        if entries is None:
            return f"the definition changed since the lock was written: the lock has no variant {name!r}"
        if recorded is not None:
            before = recorded.get(name)
            now = requested(variant)
            if before is None:
                return f"the lock does not record what variant {name!r} was resolved from"
            if before != now:
                return f"the definition changed since the lock was written: variant {name!r} {_change(before, now)}"
        missing = [p for p in variant.platforms if p not in entries]
        if missing:
            return (
                f"the definition changed since the lock was written: the lock has no {', '.join(missing)} "
                f"for variant {name!r}"
            )
    return None


def _unrecorded_change(definition: Definition, lock: LockFile) -> str | None:
    if lock.resolved_from is not None:
        return None
    digest = normalised_digest(definition)
    if digest == lock.definition.sha256:
        return None
    return (
        f"the definition changed since the lock was written (definition {digest}, "
        f"lock {lock.definition.sha256}), and the lock does not record what it was resolved from"
    )


def _base_changed(definition: Definition, lock: LockFile) -> str | None:
    base = lock.from_.image if lock.from_ is not None else None
    wanted = None if definition.from_ is None else ":".join(parse_from(definition.from_))
    if base == wanted:
        return None
    return (
        f"the definition changed since the lock was written: it starts from {wanted or 'no image'}, "
        f"the lock from {base or 'no image'}"
    )


def _change(before: Requested, now: Requested) -> str:
    added = [p for p in now.packages if p not in before.packages]
    dropped = [p for p in before.packages if p not in now.packages]
    if added or dropped:
        parts = [f"+{p}" for p in added] + [f"-{p}" for p in dropped]
        return f"asks for other packages ({' '.join(parts[:8])}{' ...' if len(parts) > 8 else ''})"
    if before.packages != now.packages:
        return "lists its packages in another order"
    if before.repositories != now.repositories:
        return "names other repositories"
    if before.keyring != now.keyring:
        return f"names another keyring ({now.keyring})"
    if before.bastion_repository != now.bastion_repository:
        return "changed bastion-repository"
    return "changed allow-expired"


def check_lock(definition: Definition, lock: LockFile, path: Path) -> None:
    """``--locked``: refuse loudly when the lock does not satisfy the definition."""
    reason = unsatisfied(definition, lock)
    if reason is not None:
        raise LockMismatchError(
            reason, where=str(path), hint=f"{refresh_hint(definition.path)}, or drop --locked"
        )
