"""From a definition to verified package files in the cache: the supply half of a build."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.cache import Download, Fetcher
from bastion.config import Settings
from bastion.lock._file import check_lock, lock_path, read_lock
from bastion.lock._model import LockedPackage, LockFile

if TYPE_CHECKING:
    from bastion.catalog import Definition


def plan(
    definition: Definition,
    settings: Settings,
    fetcher: Fetcher,
    *,
    locked: bool,
    variants: Sequence[str] | None = None,
    platforms: Sequence[str] | None = None,
) -> LockFile:
    """The exact package set: read from the lock with ``locked`` (no network), else freshly resolved."""
    if locked:
        path = lock_path(definition.path)
        lock = read_lock(path)
        check_lock(definition, lock, path)
        for variant in variants or definition.variant_names():
            for platform in platforms or definition.variant(variant).platforms:
                lock.platform(variant, platform)  # fails loudly if the lock lacks it
        return lock
    # Imported here: a --locked build needs none of the resolver (and starts faster without it).
    from bastion.lock._resolve import create_lock, resolve_definition

    resolved = resolve_definition(
        definition, fetcher, settings.index_cache_dir, variants=variants, platforms=platforms
    )
    return create_lock(definition, resolved)


def check_deb(path: Path, where: str) -> None:
    """Read a whole .deb before it enters the cache, so one with an entry escaping the root or a
    device node is refused at fetch time and never cached (:mod:`bastion.debian._deb` says why)."""
    from bastion.debian import DebArchive

    with DebArchive(path, usrmerge=True, name=where) as deb:
        deb.control()
        for _entry, _content in deb.iter_data():
            pass


def fetch_packages(lock: LockFile, fetcher: Fetcher, selection: Sequence[tuple[str, str]]) -> dict[str, Path]:
    """Download (or find in the cache) every package of the chosen (variant, platform) pairs.

    Returns cache paths keyed by SHA256. Each file is verified against the locked digest and size
    before it enters the cache.
    """
    wanted: dict[str, LockedPackage] = {}
    for variant, platform in selection:
        for package in lock.platform(variant, platform).packages:
            wanted.setdefault(package.sha256, package)
    items = [
        Download(p.url, p.sha256, p.size, f"{p.name}_{p.version}_{p.architecture}.deb", validate=check_deb)
        for p in sorted(wanted.values(), key=lambda p: (p.name, p.architecture))
    ]
    paths = fetcher.fetch_all(items, description="Fetching packages")
    return {item.sha256: path for item, path in zip(items, paths, strict=True)}
