"""The main job, the pipeline's first caller: a definition in, tagged multi-platform images in the local
store out, by running the stages in order (:mod:`bastion.pipeline._stages`).

For each variant: resolve (the lock file's package set when it satisfies the definition, which
``locked`` requires; else freshly resolved, and written to the lock file once the build succeeded),
fetch (verified package files from the cache), then for each platform, unless the recipe cache has
the image (:mod:`bastion.pipeline._cache`), assemble (the root filesystem, no maintainer scripts),
test (the definition's image tests in a bwrap sandbox, the compliance claims) and write image (layers
written deterministically) (:mod:`bastion.pipeline._platform`); then prove, sign and attach what the
image lacks of the registered producers' predicates; finally one image index over the platforms,
tagged.

Reproducibility: every timestamp is clamped to ``SOURCE_DATE_EPOCH`` (the definition's
``source-date-epoch``, else the lock's, which is the newest signed Release date it was resolved
from), so the same lock gives the same index digest on any day.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion._progress import Progress, Silent
from bastion.attest import (
    COMPLIANCE_PREDICATE_TYPE,
    TEST_REPORT_PREDICATE_TYPE,
    BuildRecord,
    Dependency,
    dependencies_from,
)
from bastion.catalog import AbsentTest, Definition, FileTest, Variant, VariantKind
from bastion.config import Settings
from bastion.lock import LockedPlatform, LockFile
from bastion.oci import (
    Descriptor,
    Store,
    host_platform,
    put_index,
    rfc3339,
)
from bastion.pipeline._aptsources import AptSource, apt_sources
from bastion.pipeline._base import BaseImage, base_image, base_variant, on_base
from bastion.pipeline._cache import BuildCache, CachedPlatform, recipe_key, tests_digest
from bastion.pipeline._platform import constant
from bastion.pipeline._release import OsRelease, debian_release
from bastion.pipeline._signer import BuildSigner, statements_digest
from bastion.pipeline._stages import (
    attest_image,
    build_upstream,
    chosen_platforms,
    default_producers,
    fetch,
    resolve,
    supply,
)
from bastion.pipeline._tree import wait_discarded

if TYPE_CHECKING:
    from bastion.attest import Fact, ProofContext
    from bastion.pipeline._imagetest import ImageCheck
    from bastion.sbom import Sbom
    from bastion.source import Upstream

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class BuiltPlatform:
    platform: str
    manifest: Descriptor
    packages: int
    layers: int
    removed: int
    cached: bool = False  # the same recipe was built before: nothing was assembled or written


@dataclass(frozen=True)
class BuiltVariant:
    variant: str
    references: tuple[str, ...]
    index: Descriptor
    platforms: tuple[BuiltPlatform, ...]


def build(
    definition: Definition,
    settings: Settings,
    *,
    locked: bool = False,
    update: bool = False,
    variants: Sequence[str] | None = None,
    platforms: Sequence[str] | None = None,
    run_tests: bool = True,
    use_cache: bool = True,
    attest: bool = True,
    key: str | None = None,
    progress: Progress | None = None,
    facts: Mapping[Fact[Any], Callable[[], Any]] | None = None,
) -> list[BuiltVariant]:
    """Build the chosen variants and platforms of ``definition`` into the local store and tag them.

    With ``use_cache`` a platform image whose recipe was built before (and is still whole in the
    store, and passed the same tests) is taken as it is (:mod:`bastion.pipeline._cache`). With
    ``attest`` each platform image gets what it lacks of the registered producers' predicates
    (:func:`bastion.pipeline.default_producers`) signed with ``key`` (a key reference) or the local
    default key (:mod:`bastion.pipeline._signer`). With ``update`` the lock is resolved afresh (for a
    ``from:`` definition: on the base image the store holds now, which the factory just rebuilt).
    ``facts`` are what only the caller knows for the proofs (the factory: the upstream review of the
    change), given to every platform image's producers.
    """
    progress = progress or Silent()
    started = rfc3339()
    invocation = str(uuid.uuid4())
    store = Store(settings.store_dir)
    cache = BuildCache(settings.home / "build-cache", store) if use_cache else None
    chosen = list(variants or definition.variant_names())
    platforms = chosen_platforms(definition, chosen, platforms)  # refused before anything is read
    with supply(settings, progress) as fetcher:
        # The lock file's packages when it satisfies the definition (bastion.lock._file says when);
        # else the whole definition is resolved (every variant and platform: cheap), so a lock is
        # never partial, and written only once every image of this build is in the store.
        planned = resolve(definition, settings, fetcher, locked=locked, update=update)
        lock = planned.lock
        if planned.resolved:
            progress.warn(
                f"resolving {definition.path} afresh ({planned.because}); the lock is written if the build succeeds"
            )
        selection = [(v, p) for v in chosen for p in (platforms or definition.variant(v).platforms)]
        debs = fetch(planned, fetcher, selection, unpack_to=settings.cache_dir / "unpacked").debs
        upstream = build_upstream(definition, settings, fetcher, sorted({p for _, p in selection}), progress)
    codename, debian_version = debian_release(lock)
    signer = BuildSigner(key, settings, progress) if attest else None  # after the lock: input errors first
    producers = default_producers()
    job = _Job(
        store,
        settings,
        cache,
        progress,
        debs,
        run_tests,
        definition.path.parent,
        signer is not None,
        definition.path,
    )
    # from: the base's variant, whose accounts and paths the whole image keeps (_base.on_base).
    below = base_variant(definition) if lock.from_ is not None else None
    results = []
    for name in chosen:
        variant = definition.variant(name) if below is None else on_base(definition.variant(name), below)
        epoch = variant.source_date_epoch if variant.source_date_epoch is not None else lock.source_date_epoch
        os_release = OsRelease(variant.image, variant.tags[0], debian_version, codename)
        variant_platforms = tuple(platforms or variant.platforms)
        built = []
        for platform in variant_platforms:
            locked_platform = lock.platform(name, platform)
            # A dev image's apt trusts what the build trusted: the lock's suites and keyring.
            sources = apt_sources(lock, locked_platform, variant) if variant.kind is VariantKind.DEV else ()
            wait_discarded()  # no removal thread runs while a platform's build forks
            built_upstream = upstream[platform]
            base = base_image(store, lock, name, platform, where=definition.path) if lock.from_ else None
            image = _build_platform(
                variant, platform, locked_platform, epoch, os_release, sources, job, built_upstream, base
            )
            result = image.built
            if signer is not None:
                record = BuildRecord(
                    definition=definition.path,
                    variant=name,
                    platforms=variant_platforms,
                    platform=platform,
                    locked=locked,
                    source_date_epoch=epoch,
                    dependencies=_dependencies(lock, locked_platform, built_upstream, base),
                    invocation_id=invocation,
                    started_on=started,
                    finished_on=rfc3339(),
                )
                context = _proof_context(image, variant, record, settings, store, facts or {})
                attest_image(context, producers, signer)
            if cache is not None and image.record is not None:
                # Only now is the image complete: a build stopped before this point leaves no record,
                # so the next one builds (and attests) it again instead of reusing it as it is.
                recipe, remembered = image.record
                predicates = {t: make() for t, make in image.made.items()} if signer is not None else None
                cache.put(recipe, replace(remembered, predicates=predicates))
            built.append(result)
        index = put_index(store, [b.manifest for b in built], annotations=variant.annotations)
        references = tuple(f"{variant.image}:{tag}" for tag in variant.tags)
        for ref in references:
            store.tag(ref, index)
        results.append(BuiltVariant(name, references, index, tuple(built)))
    planned.save()  # a lock resolved now, once everything it was resolved for is built
    wait_discarded()
    return results


@dataclass(frozen=True)
class _Job:
    """What every platform image of one build shares."""

    store: Store
    settings: Settings
    cache: BuildCache | None
    progress: Progress
    debs: Mapping[str, Path]
    run_tests: bool
    base_dir: Path  # the definition's directory: profiles named by path are read from it
    attest: bool
    definition: Path  # the definition file, which errors about the image's configuration name


@dataclass(frozen=True)
class _PlatformImage:
    """One platform image in the store, and what its attestations are made from."""

    built: BuiltPlatform
    sbom: Sbom | None  # None when the image was reused: the stored image is scanned if one is needed
    # Predicate type -> what makes it, for the predicates only assembly can make (the compliance
    # claims, the test report); for a reused image, the ones its recipe-cache record kept.
    made: Mapping[str, Callable[[], dict[str, Any]]]
    # (recipe key, record) to remember once the attestations are attached; None when reused.
    record: tuple[str, CachedPlatform] | None


def _build_platform(
    variant: Variant,
    platform: str,
    locked: LockedPlatform,
    epoch: int,
    os_release: OsRelease,
    sources: tuple[AptSource, ...],
    job: _Job,
    upstream: Upstream,
    base: BaseImage | None = None,
) -> _PlatformImage:
    """One platform image: taken from the store when its recipe was built (and attested, if this
    build attests) before, else assembled and written now."""
    store, settings, cache, progress = job.store, job.settings, job.cache, job.progress
    tests = _tests_for(variant, platform, progress) if job.run_tests else ()
    key = recipe_key(
        variant,
        platform,
        locked,
        epoch=epoch,
        os_release=os_release,
        sources=sources,
        upstream=upstream.digest if upstream.files else None,
        base=base.digest if base is not None else None,
    )
    tested = tests_digest(tests) if tests else None
    hit = cache.get(key, tests=tested) if cache is not None else None
    # A record from a build that signed nothing lacks the predicates only assembly makes: a signing
    # build assembles the image again (the same bytes) to make them.
    if hit is not None and (hit.predicates is not None or not job.attest):
        # The test report the record kept is of the tests asked for now (the record passed them), and
        # none is attached when no test was asked for (--skip-tests).
        made = {
            t: constant(dict(p))
            for t, p in (hit.predicates or {}).items()
            if tests or t != TEST_REPORT_PREDICATE_TYPE
        }
        built = BuiltPlatform(platform, hit.manifest, hit.packages, hit.layers, hit.removed, cached=True)
        return _PlatformImage(built, None, made, None)
    # Imported on a cache miss only: a no-op rebuild needs none of the assembly machinery.
    from bastion.pipeline._platform import (
        PlatformInputs,
        assemble_platform,
        assembly_attestations,
        check_platform,
        workspace,
        write_image,
    )
    from bastion.sbom import image_purl

    inputs = PlatformInputs(variant, platform, locked, job.debs, epoch, os_release, sources, upstream, base)
    with workspace(store, settings, progress, inputs) as ws:
        assembled = assemble_platform(inputs, ws, definition=job.definition)
        checked = check_platform(inputs, assembled, ws, tests, base_dir=job.base_dir, attest=job.attest)
        written = write_image(inputs, assembled, checked, ws)
    manifest = written.manifest
    built = BuiltPlatform(
        platform, manifest, len(locked.packages), written.layers, len(assembled.rootfs.removed)
    )
    record = CachedPlatform(manifest, built.packages, built.layers, built.removed, tested)
    # The attested SBOM names the image by digest, which the embedded copy cannot.
    sbom = assembled.sbom
    sbom.manifest_digest = manifest.digest
    sbom.root_purl = image_purl(variant.image, manifest.digest, platform)
    return _PlatformImage(built, sbom, assembly_attestations(checked), (key, record))


def _proof_context(
    image: _PlatformImage,
    variant: Variant,
    record: BuildRecord,
    settings: Settings,
    store: Store,
    given: Mapping[Fact[Any], Callable[[], Any]],
) -> ProofContext:
    """What the proofs of a platform image are made from: the build record, the definition's VEX
    statements, the compliance claims assembly evaluated and the report of the tests it ran (or what
    the recipe-cache record kept), and the
    SBOM assembly made (for an image reused from the store, the SBOM fact's default scans the stored
    image, which completes itself from the SBOM embedded in it)."""
    from bastion.attest import BUILD_RECORD, ProofContext
    from bastion.compliance import CLAIMS
    from bastion.pipeline._testreport import TEST_REPORT
    from bastion.sbom import SBOM
    from bastion.vex import VEX_STATEMENTS, ImageVex

    vex = ImageVex(variant.vex, statements_digest(variant.vex))
    facts: dict[Fact[Any], Callable[[], Any]] = {
        **given,
        BUILD_RECORD: lambda: record,
        VEX_STATEMENTS: lambda: vex,
    }
    if image.sbom is not None:
        sbom = image.sbom
        facts[SBOM] = lambda: sbom
    for predicate_type, make in image.made.items():
        if predicate_type == COMPLIANCE_PREDICATE_TYPE:
            facts[CLAIMS] = make
        elif predicate_type == TEST_REPORT_PREDICATE_TYPE:
            facts[TEST_REPORT] = make
    built = image.built
    return ProofContext(
        store, built.manifest, name=variant.image, platform=built.platform, settings=settings, facts=facts
    )


def _dependencies(
    lock: LockFile, locked: LockedPlatform, upstream: Upstream, base: BaseImage | None = None
) -> tuple[Dependency, ...]:
    """What the build read, by digest: every .deb, each signed InRelease it was resolved from, and
    each upstream build's source and build-root packages and each artifact's image; for a ``from:``
    image, the base image's platform manifest instead of the .debs its layers hold."""
    items: list[tuple[str, str, str | None]] = [
        (p.url, p.sha256, p.name) for p in locked.packages if not p.base
    ]
    items += [(i.uri, i.sha256, i.name) for i in upstream.inputs]
    if base is not None:
        repository = base.reference.rsplit(":", 1)[0]
        items.append(
            (
                f"pkg:oci/{repository.rsplit('/', 1)[-1]}@{base.digest}",
                base.digest.removeprefix("sha256:"),
                base.reference,
            )
        )
    items += [
        (f"{s.repository.rstrip('/')}/dists/{s.suite}/InRelease", s.inrelease_sha256, None)
        for s in lock.suites
    ]
    if any(p.url.startswith("file:") for p in locked.packages):
        # Packages Bastion built from source (its local repository): each one's signed provenance.
        from bastion.source import provenance_references

        items += provenance_references((p.url, p.sha256) for p in locked.packages)
    return dependencies_from(items)


def _tests_for(variant: Variant, platform: str, progress: Progress) -> tuple[ImageCheck, ...]:
    """The variant's tests that can run for ``platform``: those not limited to other platforms (a
    test's ``platforms``); structure checks read files and run anywhere; commands would need
    emulation, which Bastion does not use."""
    mine = tuple(t for t in variant.tests if t.platforms is None or platform in t.platforms)
    if platform == str(host_platform()):
        return mine
    tests = tuple(t for t in mine if isinstance(t, FileTest | AbsentTest))
    if skipped := len(mine) - len(tests):
        progress.warn(
            f"{variant.name} {platform}: {skipped} command/HTTP test(s) skipped "
            "(not the host's platform; no emulation)"
        )
    return tests
