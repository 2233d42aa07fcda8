"""The repository client: signed suites in, verified package indices out.

For each suite: fetch ``InRelease`` and verify it (:mod:`._release`); for each component, pick the
``Packages`` index for the architecture from the signed SHA256 list, fetch it by hash when the
suite supports it (Debian Repository Format, "Acquire-By-Hash": the URL names the content, so a
mirror update between our two requests cannot hand us a mismatched file), and check its SHA256
and size before it is used or cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bastion.cache import Download, Fetcher
from bastion.debian._index import PackageIndex, load_parsed, parse_to_cache
from bastion.debian._keyring import DEFAULT_KEYRING
from bastion.debian._release import IndexFile, Release, verify_inrelease
from bastion.debian._sources import Source
from bastion.errors import InputError

# Preference order: smallest download first; all are checked against the same signed list.
_COMPRESSIONS = (".xz", ".gz", "")


@dataclass(frozen=True)
class Suite:
    """A verified suite of one repository."""

    source: Source
    name: str
    keyring: Path
    release: Release

    @property
    def base(self) -> str:
        return self.source.uri.rstrip("/")

    @property
    def label(self) -> str:
        return f"{self.base} {self.name}"


def open_suites(
    sources: list[Source],
    fetcher: Fetcher,
    *,
    keyring: Path | None = None,
    allow_expired: bool = False,
    now: datetime | None = None,
) -> list[Suite]:
    """Fetch and verify the InRelease file of every suite of every source."""
    suites: list[Suite] = []
    for source in sources:
        ring = keyring or source.keyring or DEFAULT_KEYRING
        for name in source.suites:
            url = f"{source.uri.rstrip('/')}/dists/{name}/InRelease"
            data = fetcher.get(url)
            release, warnings = verify_inrelease(
                data, ring, where=url, expected_suite=name, now=now, allow_expired=allow_expired
            )
            for warning in warnings:
                fetcher.progress.warn(warning)
            suites.append(Suite(source, name, ring, release))
    return suites


def _pick_index(suite: Suite, component: str, arch: str) -> IndexFile:
    stem = f"{component}/binary-{arch}/Packages"
    for ext in _COMPRESSIONS:
        entry = suite.release.index(stem + ext)
        if entry is not None:
            return entry
    raise InputError(f"suite {suite.name} of {suite.base} has no {stem} for architecture {arch}")


def load_index(suites: list[Suite], arch: str, fetcher: Fetcher, parsed_cache: Path) -> PackageIndex:
    """Build the candidate index for ``arch`` from every suite and component."""
    index = PackageIndex(arch)
    pending: list[tuple[Suite, IndexFile, Download]] = []
    for suite in suites:
        if suite.source.architectures and arch not in suite.source.architectures:
            continue
        for component in suite.source.components:
            entry = _pick_index(suite, component, arch)
            parsed = load_parsed(parsed_cache, entry.sha256)
            if parsed is not None:
                index.add(parsed, suite.base, suite.name)
                continue
            directory = entry.path.rsplit("/", 1)[0]
            url = (
                f"{suite.base}/dists/{suite.name}/{directory}/by-hash/SHA256/{entry.sha256}"
                if suite.release.acquire_by_hash
                else f"{suite.base}/dists/{suite.name}/{entry.path}"
            )
            pending.append(
                (suite, entry, Download(url, entry.sha256, entry.size, f"{suite.label} {entry.path}"))
            )
    if pending:
        paths = fetcher.fetch_all(
            [d for _, _, d in pending], description=f"Fetching package indices ({arch})"
        )
        for (suite, entry, download), path in zip(pending, paths, strict=True):
            parsed = parse_to_cache(path, entry.path, parsed_cache, entry.sha256, where=download.label)
            index.add(parsed, suite.base, suite.name)
    return index
