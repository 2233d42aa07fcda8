"""From a definition to verified package files in the cache: the supply half of a build."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.cache import Download, Fetcher
from bastion.config import Settings
from bastion.errors import IntegrityError, NetworkError, UnsafeArchiveError
from bastion.lock._file import check_lock, lock_path, read_lock, refresh_hint, unsatisfied, write_lock
from bastion.lock._model import Base, LockedPackage, LockFile

if TYPE_CHECKING:
    from bastion.catalog import Definition


@dataclass(frozen=True)
class Planned:
    """The package set a command works from, and where it came from."""

    lock: LockFile
    path: Path  # the definition's lock file
    definition: Path
    resolved: bool  # resolved now: the file was missing, did not satisfy the definition, or --update
    because: str | None = None  # why the file's lock was not used

    def save(self) -> bool:
        """Write a lock resolved now to the lock file (atomically); True if it was written. Called
        only once the command that needed it succeeded, so a failed command leaves the file as it was."""
        if not self.resolved:
            return False
        write_lock(self.lock, self.path)
        return True


def plan(
    definition: Definition,
    settings: Settings,
    fetcher: Fetcher,
    *,
    locked: bool,
    update: bool = False,
    base: Base | None = None,
) -> Planned:
    """The exact package set of ``definition``.

    The lock file's when it satisfies the definition (:mod:`bastion.lock._file`), with no index and
    no network; with ``locked`` it must. With ``base`` (a ``from:`` definition: the base image in the
    store now and its lock), a lock resolved on another base image does not satisfy it. Otherwise (no lock file, a definition asking for something
    else, or ``update``) every variant and platform is resolved afresh from verified indices, so a
    lock is never partial; nothing is written here (:meth:`Planned.save`).
    """
    path = lock_path(definition.path)
    because: str | None = "asked to update it"
    if locked:
        lock = read_lock(path, definition_path=definition.path)
        check_lock(definition, lock, path)
        return Planned(lock, path, definition.path, resolved=False)
    if not update:
        if not path.exists():
            because = "there is no lock file yet"
        else:
            lock = read_lock(path, definition_path=definition.path)
            because = unsatisfied(definition, lock) or _base_moved(lock, base)
            if because is None:
                return Planned(lock, path, definition.path, resolved=False)
    # Imported here: a build from the lock needs none of the resolver (and starts faster without it).
    from bastion.lock._resolve import create_lock, resolve_definition

    resolved = resolve_definition(
        definition, fetcher, settings.index_cache_dir, base=base, repository=settings.repository_dir
    )
    return Planned(
        create_lock(definition, resolved, base), path, definition.path, resolved=True, because=because
    )


def _base_moved(lock: LockFile, base: Base | None) -> str | None:
    if base is None or lock.from_ is None or lock.from_.digest == base.locked.digest:
        return None
    return f"the base image {base.locked.reference} is now {base.locked.digest} (the lock has {lock.from_.digest})"


def check_deb(path: Path, where: str) -> None:
    """Read a whole .deb before it enters the cache, so one with an entry escaping the root or a
    device node is refused at fetch time and never cached (:mod:`bastion.debian._deb` says why)."""
    from bastion.debian import DebArchive

    with DebArchive(path, usrmerge=True, name=where) as deb:
        deb.control()
        for _entry, _content in deb.iter_data():
            pass


def fetch_packages(
    lock: LockFile,
    fetcher: Fetcher,
    selection: Sequence[tuple[str, str]],
    *,
    definition: Path | None = None,
) -> dict[str, Path]:
    """Download (or find in the cache) every package of the chosen (variant, platform) pairs.

    Returns cache paths keyed by SHA256. Each file is verified against the locked digest and size
    before it enters the cache. With ``definition`` (the lock came from its file) a file that cannot
    be had says how to refresh the lock.
    """
    wanted: dict[str, LockedPackage] = {}
    for variant, platform in selection:
        for package in lock.platform(variant, platform).packages:
            wanted.setdefault(package.sha256, package)
    items = [
        Download(p.url, p.sha256, p.size, f"{p.name}_{p.version}_{p.architecture}.deb", validate=check_deb)
        for p in sorted(wanted.values(), key=lambda p: (p.name, p.architecture))
    ]
    try:
        paths = fetcher.fetch_all(items, description="Fetching packages")
    except UnsafeArchiveError:
        raise
    except (NetworkError, IntegrityError) as exc:
        if definition is not None:
            # A lock read from its file names files the mirror served when it was written; Debian's
            # archive drops a version from the pool once a newer one replaces it.
            exc.hint = f"the mirror may no longer serve the locked files: {refresh_hint(definition)}"
        raise
    return {item.sha256: path for item, path in zip(items, paths, strict=True)}
