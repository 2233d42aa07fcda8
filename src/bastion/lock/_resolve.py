"""Resolve a definition against the signed archives and turn the result into a lock."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.cache import Fetcher
from bastion.catalog import VariantKind, normalised_digest
from bastion.config import REPOSITORY_COMPONENT, REPOSITORY_KEYRING, REPOSITORY_SUITE
from bastion.debian import (
    DEFAULT_PRUNE,
    PackageIndex,
    PackageRecord,
    Resolution,
    Source,
    Suite,
    debian_arch,
    debian_platform,
    host_sources,
    load_index,
    open_suites,
    resolve,
)
from bastion.errors import InputError
from bastion.lock._file import requested
from bastion.lock._model import (
    LOCK_VERSION,
    Base,
    DefinitionRef,
    DroppedRelation,
    KeyringRef,
    LockedPackage,
    LockedPlatform,
    LockedSuite,
    LockFile,
)

if TYPE_CHECKING:
    from bastion.catalog import Definition, Variant


@dataclass(frozen=True)
class ResolvedVariant:
    name: str
    suites: list[Suite]
    platforms: dict[str, Resolution]


def bastion_source(repository: Path, origin: str) -> Source:
    """Bastion's own APT repository at ``repository`` (``Settings.repository_dir``) as an apt source,
    signed by its published key; an :class:`InputError` when nothing was published there yet."""
    keyring = repository / REPOSITORY_KEYRING
    if not (repository / "dists" / REPOSITORY_SUITE / "InRelease").is_file() or not keyring.is_file():
        raise InputError(
            f"the definition takes packages from Bastion's repository ({repository}), which has none yet",
            where=f"{origin}: contents.bastion-repository",
            hint="publish them first with 'bastion source build PACKAGE-DEFINITION'",
        )
    return Source(uri=repository.resolve().as_uri(), suites=(REPOSITORY_SUITE,),
                  components=(REPOSITORY_COMPONENT,), keyring=keyring, origin=origin)  # fmt: skip


def variant_sources(variant: Variant, origin: str) -> list[Source]:
    contents = variant.contents
    if not contents.repositories:
        return host_sources()
    return [
        Source(
            uri=repo.uri,
            suites=tuple(repo.suites),
            components=tuple(repo.components),
            origin=origin,
        )
        for repo in contents.repositories
    ]


def resolve_definition(
    definition: Definition,
    fetcher: Fetcher,
    index_cache: Path,
    *,
    variants: Sequence[str] | None = None,
    platforms: Sequence[str] | None = None,
    now: datetime | None = None,
    base: Base | None = None,
    repository: Path | None = None,
) -> list[ResolvedVariant]:
    """Resolve each variant of a definition for each of its platforms, from freshly verified indices;
    with ``base`` (``from:``), on top of the base image's locked packages; ``repository`` is Bastion's
    own APT repository, for the variants that ask for it."""
    opened: dict[tuple[tuple[Source, ...], str, bool, Source | None], list[Suite]] = {}
    indices: dict[tuple[tuple[Source, ...], str, bool, Source | None, str], PackageIndex] = {}
    results: list[ResolvedVariant] = []
    for name in variants or definition.variant_names():
        variant = definition.variant(name)
        sources = tuple(variant_sources(variant, str(definition.path)))
        # The definition's keyring (default: Debian's archive keyring) is the trust anchor for every
        # suite it names, including the host's sources.
        keyring = str(definition.resolve_file(variant.contents.keyring))
        local = None
        if variant.contents.bastion_repository:
            if repository is None:
                raise InputError("Bastion's repository is not known to this command",
                                 where=f"{definition.path}: contents.bastion-repository")  # fmt: skip
            local = bastion_source(repository, str(definition.path))
        key = (sources, keyring, variant.contents.allow_expired, local)
        if key not in opened:
            opened[key] = open_suites(
                list(sources),
                fetcher,
                keyring=Path(keyring),
                allow_expired=variant.contents.allow_expired,
                now=now,
            )
            if local is not None:
                # Bastion's repository is verified with its own published key, never with the
                # definition's (which vouches for Debian's archive): each source its own Signed-By.
                opened[key] += open_suites([local], fetcher, keyring=local.keyring, now=now)
        suites = opened[key]
        resolved: dict[str, Resolution] = {}
        for platform in platforms or variant.platforms:
            arch = debian_arch(debian_platform(platform))
            index = indices.get((*key, arch))
            if index is None:
                index = load_index(suites, arch, fetcher, index_cache)
                indices[(*key, arch)] = index
            # The prune list leaves out what only maintainer scripts use; a dev image runs apt and dpkg,
            # which need every dependency of what is installed met (Policy 7.2), so it prunes nothing.
            prune = DEFAULT_PRUNE if variant.kind is VariantKind.RUNTIME else frozenset()
            installed = _installed(index, base, platform, str(definition.path)) if base is not None else ()
            resolved[platform] = resolve(
                index, list(variant.contents.packages), prune=prune, installed=installed
            )
        results.append(ResolvedVariant(name, suites, resolved))
    return results


def _installed(index: PackageIndex, base: Base, platform: str, where: str) -> list[PackageRecord]:
    """The base image's packages on ``platform`` as index records (the index's own record when it
    still lists that exact file, so what the package provides counts; else what the lock knows)."""
    packages = base.packages.get(platform)
    if packages is None:
        raise InputError(f"from: {base.locked.image} is not built for {platform}", where=where)
    records = []
    for p in packages:
        listed = [r for r in index.candidates(p.name) if r.sha256 == p.sha256]
        records.append(
            listed[0]
            if listed
            else PackageRecord(
                p.name,
                p.version,
                p.architecture,
                p.source,
                p.source_version,
                "",
                "",
                "",
                p.filename,
                p.size,
                p.sha256,
                "",
                False,
                "",
                "",
                p.repository,
                p.suite,
            )
        )
    return records


def create_lock(
    definition: Definition, resolved: list[ResolvedVariant], base: Base | None = None
) -> LockFile:
    suites: dict[tuple[str, str], Suite] = {}
    for rv in resolved:
        for suite in rv.suites:
            suites[(suite.base, suite.name)] = suite
    keyrings: dict[str, set[str]] = {}
    for suite in suites.values():
        keyrings.setdefault(str(suite.keyring), set()).update(suite.release.signers)
    variants: dict[str, dict[str, LockedPlatform]] = {}
    for rv in resolved:
        variants[rv.name] = {
            platform: LockedPlatform(
                architecture=resolution.architecture,
                packages=[_locked(resolution, p, base, platform) for p in resolution.packages],
                dropped=[
                    DroppedRelation(parent=d.parent, relation=d.relation, because=d.because)
                    for d in resolution.dropped
                ],
            )
            for platform, resolution in rv.platforms.items()
        }
    return LockFile(
        lock_version=LOCK_VERSION,
        definition=DefinitionRef(path=definition.path.name, sha256=normalised_digest(definition)),
        resolved_from={rv.name: requested(definition.variant(rv.name)) for rv in resolved},
        keyrings=[
            KeyringRef(path=path, sha256=_file_sha256(Path(path)), fingerprints=sorted(fprs))
            for path, fprs in sorted(keyrings.items())
        ],
        # Reproducible builds: the default SOURCE_DATE_EPOCH is the newest signed Release date the
        # packages were resolved from, so two builds of one lock on different days agree.
        source_date_epoch=int(max(s.release.date for s in suites.values()).timestamp()),
        suites=[
            LockedSuite(
                repository=s.base,
                suite=s.name,
                codename=s.release.codename,
                date=s.release.date.isoformat(),
                valid_until=s.release.valid_until.isoformat() if s.release.valid_until else None,
                inrelease_sha256=s.release.inrelease_sha256,
                keyring=str(s.keyring),
                signed_by=list(s.release.signers),
            )
            for _, s in sorted(suites.items())
        ],
        variants=variants,
        **({"from": base.locked} if base is not None else {}),
    )


def _locked(resolution: Resolution, record: PackageRecord, base: Base | None, platform: str) -> LockedPackage:
    if base is not None:
        for package in base.packages.get(platform, ()):
            if package.name == record.name and package.sha256 == record.sha256:
                return package.model_copy(update={"base": True})  # as the base's lock has it
    reason = resolution.reasons[record.name]
    return LockedPackage(
        name=record.name,
        version=record.version,
        architecture=record.architecture,
        source=record.source,
        source_version=record.source_version,
        filename=record.filename,
        sha256=record.sha256,
        size=record.size,
        repository=record.repository,
        suite=record.suite,
        required_by=reason.parent,
        relation=reason.relation or None,
    )


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(f"cannot read keyring {path}: {exc.strerror}") from None
