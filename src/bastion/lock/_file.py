"""Lock files on disk: where they live, writing them atomically, reading and checking them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bastion.catalog import normalised_digest
from bastion.errors import InputError, LockMismatchError
from bastion.lock._model import LOCK_VERSION, LockFile

if TYPE_CHECKING:
    from bastion.catalog import Definition


def lock_path(definition_path: Path) -> Path:
    """``catalog/python/python.yaml`` → ``catalog/python/python.lock.json``."""
    return definition_path.with_name(definition_path.stem + ".lock.json")


def write_lock(lock: LockFile, path: Path) -> None:
    text = json.dumps(lock.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_lock(path: Path) -> LockFile:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"no lock file at {path}", hint="run 'bastion lock' first") from None
    except ValueError as exc:
        raise InputError(f"lock file is not valid JSON: {exc}", where=str(path)) from None
    try:
        lock = LockFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"malformed lock file: {field}: {first['msg']}", where=str(path)) from None
    if lock.lock_version != LOCK_VERSION:
        raise InputError(
            f"lock format version {lock.lock_version} is not supported (expected {LOCK_VERSION})",
            where=str(path),
        )
    return lock


def check_lock(definition: Definition, lock: LockFile, path: Path) -> None:
    """``--locked``: refuse loudly when the definition changed since the lock was written."""
    digest = normalised_digest(definition)
    if digest != lock.definition.sha256:
        raise LockMismatchError(
            f"the definition changed since the lock was written (definition {digest}, lock {lock.definition.sha256})",
            where=str(path),
            hint="run 'bastion lock' to update it, or drop --locked",
        )
