"""``debian-package`` trackers and transitive monitoring, one conditional request per suite.

Every suite any definition uses (its ``contents.repositories``, or the host's apt sources) is polled
once however many trackers and locks use it: ``GET dists/<suite>/InRelease`` with the stored ETag
and Last-Modified. On 304 the InRelease kept from the last poll (``cache/factory/inrelease/<sha256>``)
is verified again; otherwise the new one is verified and kept. Either way the chain is the one
``bastion lock`` trusts (:func:`bastion.debian.verify_inrelease` -> signed SHA256 list ->
:func:`bastion.debian.load_index`, whose parsed indices are cached by digest, so an unchanged
suite costs no download).

Transitive monitoring: a package of an image's lock file whose candidate is now newer than the
locked version is a change for that image, tracked or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bastion._atomic import atomic_write
from bastion.cache import Cache, Fetcher
from bastion.catalog import DebianPackageTracker, Definition
from bastion.config import Settings
from bastion.debian import (
    PackageIndex,
    Source,
    Suite,
    compare_versions,
    debian_arch,
    debian_platform,
    host_sources,
    load_index,
    verify_inrelease,
)
from bastion.errors import BastionError
from bastion.factory._http import Http
from bastion.factory._state import TrackerState
from bastion.factory._trackers import Polled, TrackerRef, variables

__all__ = ["DebianPoll", "LockChange", "SuiteKey", "poll_debian", "suite_key"]

SuiteKey = tuple[str, str, str, tuple[str, ...]]  # base URI, suite, keyring, components


def suite_key(uri: str, suite: str, keyring: Path, components: Sequence[str]) -> SuiteKey:
    return (uri.rstrip("/"), suite, str(keyring), tuple(components))


def state_key(key: SuiteKey) -> str:
    return f"repository:{key[0]} {key[1]}"


@dataclass(frozen=True)
class LockChange:
    """A locked package whose candidate moved."""

    definition: str
    package: str
    architecture: str
    locked: str
    candidate: str


@dataclass
class DebianPoll:
    """What one poll of the Debian suites found."""

    trackers: list[Polled] = field(default_factory=list)
    suites: list[Polled] = field(default_factory=list)
    """One state row per suite (key ``repository:<uri> <suite>``), with its validators."""
    lock_changes: list[LockChange] = field(default_factory=list)


def _sources(definition: Definition) -> list[tuple[Source, Path]]:
    contents = definition.contents
    keyring = definition.resolve_file(contents.keyring)
    if contents.repositories is None:
        return [(source, source.keyring or keyring) for source in host_sources()]
    return [
        (Source(r.uri, tuple(r.suites), tuple(r.components), keyring, origin=str(definition.path)), keyring)
        for r in contents.repositories
    ]


class _Suites:
    """Each suite opened once per poll; an index loaded once per (suite, architecture)."""

    def __init__(self, settings: Settings, http: Http, previous: Mapping[str, TrackerState]) -> None:
        self.settings = settings
        self.http = http
        self.previous = previous
        self.fetcher = Fetcher(Cache(settings.cache_dir))
        self.opened: dict[SuiteKey, Suite | BastionError] = {}
        self.indices: dict[tuple[SuiteKey, str], PackageIndex | BastionError] = {}
        self.states: list[Polled] = []
        self.kept = settings.cache_dir / "factory" / "inrelease"

    def suite(self, key: SuiteKey, source: Source) -> Suite:
        if key not in self.opened:
            try:
                self.opened[key] = self._open(key, source)
            except BastionError as err:
                self.opened[key] = err
                self.states.append(Polled(state_key(key), "debian-suite", error=err.diagnostic()))
        found = self.opened[key]
        if isinstance(found, BastionError):
            raise found
        return found

    def _open(self, key: SuiteKey, source: Source) -> Suite:
        import hashlib

        url = f"{key[0]}/dists/{key[1]}/InRelease"
        previous = self.previous.get(state_key(key))
        kept = previous.memory.get("inrelease-sha256") if previous else None
        answer = self.http.get(
            url, validators=previous.validators if previous and kept else None, max_body=64 << 20
        )
        if answer.not_modified and isinstance(kept, str) and (self.kept / kept).is_file():
            data = (self.kept / kept).read_bytes()
        elif answer.status == 200:
            data = answer.body
        else:
            raise BastionError(f"{url}: HTTP {answer.status}")
        release, _warnings = verify_inrelease(data, Path(key[2]), where=url, expected_suite=key[1])
        digest = hashlib.sha256(data).hexdigest()
        if not (self.kept / digest).is_file():
            self.kept.mkdir(parents=True, exist_ok=True)
            atomic_write(self.kept / digest, data)
        self.states.append(
            Polled(state_key(key), "debian-suite", release.date.isoformat(), validators=answer.validators,
                   memory={"inrelease-sha256": digest})
        )  # fmt: skip
        single = Source(source.uri, (key[1],), key[3], Path(key[2]), source.architectures, source.origin)
        return Suite(single, key[1], Path(key[2]), release)

    def index(self, key: SuiteKey, source: Source, arch: str) -> PackageIndex:
        if (key, arch) not in self.indices:
            try:
                suite = self.suite(key, source)
                self.indices[(key, arch)] = load_index(
                    [suite], arch, self.fetcher, self.settings.index_cache_dir
                )
            except BastionError as err:
                self.indices[(key, arch)] = err
        found = self.indices[(key, arch)]
        if isinstance(found, BastionError):
            raise found
        return found


def _candidate(indices: Sequence[PackageIndex], package: str) -> str | None:
    best: str | None = None
    for index in indices:
        for record in index.candidates(package):
            if best is None or compare_versions(record.version, best) > 0:
                best = record.version
    return best


def poll_debian(
    definitions: Mapping[str, Definition],
    refs: Sequence[TrackerRef],
    locks: Mapping[str, object],
    settings: Settings,
    http: Http,
    previous: Mapping[str, TrackerState],
) -> DebianPoll:
    """Poll every suite the ``debian-package`` trackers and the lock files (``locks``: definition
    name -> :class:`bastion.lock.LockFile`) need, once each, and report both."""
    from bastion.lock import LockFile

    suites = _Suites(settings, http, previous)
    poll = DebianPoll()
    needed = _needed(refs, locks)  # once: per definition it made the poll quadratic in the catalog
    sources = {name: _sources(definition) for name, definition in definitions.items() if name in needed}
    for ref in refs:
        spec = ref.spec
        assert isinstance(spec, DebianPackageTracker)
        definition = definitions[ref.definition]
        arch = spec.architecture or debian_arch(debian_platform(definition.platforms[0]))
        try:
            indices = [
                suites.index(suite_key(s.uri, name, ring, s.components), s, arch)
                for s, ring in sources[ref.definition]
                for name in s.suites
            ]
            version = _candidate(indices, spec.package)
            if version is None:
                raise BastionError(f"{ref.label}: no package {spec.package!r} for {arch} in the repositories")
            variables(ref, version)
            poll.trackers.append(Polled(ref.key, spec.kind, version))
        except BastionError as err:
            poll.trackers.append(Polled(ref.key, spec.kind, error=f"{ref.label}: {err.diagnostic()}"))
    for name, lock in locks.items():
        assert isinstance(lock, LockFile)
        by_suite = {
            (uri.rstrip("/"), suite): (s, ring)
            for s, ring in sources[name]
            for uri in (s.uri,)
            for suite in s.suites
        }
        seen: set[tuple[str, str]] = set()
        for platforms in lock.variants.values():
            for platform in platforms.values():
                for package in platform.packages:
                    if (package.name, package.architecture) in seen:
                        continue
                    seen.add((package.name, package.architecture))
                    found = by_suite.get((package.repository.rstrip("/"), package.suite))
                    if found is None:
                        continue
                    source, ring = found
                    arch = package.architecture if package.architecture != "all" else platform.architecture
                    try:
                        index = suites.index(
                            suite_key(source.uri, package.suite, ring, source.components), source, arch
                        )
                    except BastionError:
                        continue  # the suite's failure is reported once, in its own state row
                    candidate = _candidate([index], package.name)
                    if candidate is not None and compare_versions(candidate, package.version) > 0:
                        poll.lock_changes.append(
                            LockChange(name, package.name, package.architecture, package.version, candidate)
                        )
    poll.suites = suites.states
    suites.fetcher.close()
    return poll


def _needed(refs: Sequence[TrackerRef], locks: Mapping[str, object]) -> set[str]:
    return {ref.definition for ref in refs} | set(locks)
