"""The main job: a definition in, tagged multi-platform images in the local store out.

For each variant: the exact package set (the lock file's when it satisfies the definition, which
``locked`` requires; else freshly resolved, and written to the lock file once the build succeeded),
verified package files from the cache, then for each platform an assembled
root filesystem (no maintainer scripts), the definition's image tests in a bwrap sandbox, layers
written deterministically, and finally one image index over the platforms, tagged.

Reproducibility: every timestamp is clamped to ``SOURCE_DATE_EPOCH`` (the definition's
``source-date-epoch``, else the lock's, which is the newest signed Release date it was resolved
from), so the same lock gives the same index digest on any day.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion import __version__
from bastion._forked import Forked
from bastion._progress import Progress, Silent
from bastion.attest import BuildRecord, Dependency, dependencies_from
from bastion.cache import Cache, Fetcher
from bastion.catalog import AbsentTest, Definition, FileTest, Variant, VariantKind, parse_platform
from bastion.config import Settings
from bastion.errors import BastionError, ExitCode, InputError, InternalError
from bastion.identifiers import LABEL_VARIANT
from bastion.lock import LockedPackage, LockedPlatform, LockFile, fetch_packages, plan
from bastion.oci import (
    Descriptor,
    HistoryEntry,
    PartCache,
    Platform,
    RuntimeConfig,
    Store,
    image_config,
    put_image,
    put_index,
    remove_abandoned,
    rfc3339,
)
from bastion.pipeline._aptsources import AptSource, apt_sources
from bastion.pipeline._attest import BuildSigner, attest_platform
from bastion.pipeline._cache import BuildCache, CachedPlatform, recipe_key, tests_digest
from bastion.pipeline._hostids import host_owner
from bastion.pipeline._release import OsRelease, debian_release
from bastion.pipeline._tree import discard_later, wait_discarded

if TYPE_CHECKING:
    from bastion.compliance import ClaimResult
    from bastion.pipeline._assemble import Rootfs
    from bastion.pipeline._imagetest import ImageCheck
    from bastion.sbom import Sbom

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class ImageTestFailed(BastionError):
    """A definition's image test failed: the image is not tagged (exit code 1, a failed verification)."""

    exit_code = ExitCode.FINDINGS


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
    variants: Sequence[str] | None = None,
    platforms: Sequence[str] | None = None,
    run_tests: bool = True,
    use_cache: bool = True,
    attest: bool = True,
    key: str | None = None,
    progress: Progress | None = None,
) -> list[BuiltVariant]:
    """Build the chosen variants and platforms of ``definition`` into the local store and tag them.

    With ``use_cache`` a platform image whose recipe was built before (and is still whole in the
    store, and passed the same tests) is taken as it is (:mod:`bastion.pipeline._cache`). With
    ``attest`` each platform image gets signed SBOM and provenance attestations, signed with ``key``
    (a key reference) or the local default key (:mod:`bastion.pipeline._attest`).
    """
    progress = progress or Silent()
    started = rfc3339()
    invocation = str(uuid.uuid4())
    store = Store(settings.store_dir)
    cache = BuildCache(settings.home / "build-cache", store) if use_cache else None
    chosen = list(variants or definition.variant_names())
    platforms = _chosen_platforms(definition, chosen, platforms)  # refused before anything is read
    with Fetcher(Cache(settings.cache_dir), progress=progress) as fetcher:
        # The lock file's packages when it satisfies the definition (bastion.lock._file says when);
        # else the whole definition is resolved (every variant and platform: cheap), so a lock is
        # never partial, and written only once every image of this build is in the store.
        planned = plan(definition, settings, fetcher, locked=locked)
        lock = planned.lock
        if planned.resolved:
            progress.warn(
                f"resolving {definition.path} afresh ({planned.because}); the lock is written if the build succeeds"
            )
        selection = [(v, p) for v in chosen for p in (platforms or definition.variant(v).platforms)]
        from_file = None if planned.resolved else definition.path
        from bastion.pipeline._unpacked import EarlyUnpack

        with EarlyUnpack(settings.cache_dir / "unpacked") as early:
            fetcher.on_fetched = early.submit  # each package downloaded is unpacked as others download
            debs = fetch_packages(lock, fetcher, selection, definition=from_file)
    codename, debian_version = debian_release(lock)
    signer = BuildSigner(key, settings, progress) if attest else None  # after the lock: input errors first
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
    results = []
    for name in chosen:
        variant = definition.variant(name)
        epoch = variant.source_date_epoch if variant.source_date_epoch is not None else lock.source_date_epoch
        os_release = OsRelease(variant.image, variant.tags[0], debian_version, codename)
        chosen_platforms = tuple(platforms or variant.platforms)
        built = []
        for platform in chosen_platforms:
            locked_platform = lock.platform(name, platform)
            # A dev image's apt trusts what the build trusted: the lock's suites and keyring.
            sources = apt_sources(lock, locked_platform, variant) if variant.kind is VariantKind.DEV else ()
            wait_discarded()  # no removal thread runs while a platform's build forks
            image = _build_platform(variant, platform, locked_platform, epoch, os_release, sources, job)
            result = image.built
            if signer is not None:
                record = BuildRecord(
                    definition=definition.path,
                    variant=name,
                    platforms=chosen_platforms,
                    platform=platform,
                    locked=locked,
                    source_date_epoch=epoch,
                    dependencies=_dependencies(lock, locked_platform),
                    invocation_id=invocation,
                    started_on=started,
                    finished_on=rfc3339(),
                )
                reference = f"{variant.image}@{result.manifest.digest}"
                attest_platform(
                    store,
                    result.manifest,
                    name=variant.image,
                    signer=signer,
                    record=record,
                    sbom=_sbom_source(image.sbom, reference, settings),
                    vex=variant.vex,
                    settings=settings,
                    extra=dict(image.made) or None,
                )
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


def _chosen_platforms(
    definition: Definition, chosen: Sequence[str], platforms: Sequence[str] | None
) -> list[str] | None:
    """``--platform`` in its normal spelling, refused unless every chosen variant lists it."""
    if not platforms:
        return None
    normal = [str(parse_platform(p)) for p in platforms]
    for name in chosen:
        listed = definition.variant(name).platforms
        for platform in normal:
            if platform not in listed:
                raise InputError(
                    f"variant {name!r} is not built for {platform} (its platforms: {', '.join(listed)})",
                    where=str(definition.path),
                )
    return normal


@dataclass(frozen=True)
class _Job:
    """What every platform image of one build shares."""

    store: Store
    settings: Settings
    cache: BuildCache | None
    progress: Progress
    debs: dict[str, Path]
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
    # claims); for a reused image, the ones its recipe-cache record kept.
    made: Mapping[str, Callable[[], dict[str, Any]]]
    # (recipe key, record) to remember once the attestations are attached; None when reused.
    record: tuple[str, CachedPlatform] | None


def _build_platform(  # noqa: PLR0915  (the build's steps for one platform, in their order)
    variant: Variant,
    platform: str,
    locked: LockedPlatform,
    epoch: int,
    os_release: OsRelease,
    sources: tuple[AptSource, ...],
    job: _Job,
) -> _PlatformImage:
    """One platform image: taken from the store when its recipe was built (and attested, if this
    build attests) before, else assembled and written now."""
    store, settings, cache, progress, debs, run_tests = (
        job.store, job.settings, job.cache, job.progress, job.debs, job.run_tests
    )  # fmt: skip
    tests = _tests_for(variant, platform, progress) if run_tests else ()
    key = recipe_key(variant, platform, locked, epoch=epoch, os_release=os_release, sources=sources)
    tested = tests_digest(tests) if tests else None
    hit = cache.get(key, tests=tested) if cache is not None else None
    # A record from a build that signed nothing lacks the predicates only assembly makes: a signing
    # build assembles the image again (the same bytes) to make them.
    if hit is not None and (hit.predicates is not None or not job.attest):
        made = {t: _constant(dict(p)) for t, p in (hit.predicates or {}).items()}
        built = BuiltPlatform(platform, hit.manifest, hit.packages, hit.layers, hit.removed, cached=True)
        return _PlatformImage(built, None, made, None)
    # Imported on a cache miss only: a no-op rebuild needs none of the assembly machinery.
    from bastion.pipeline._assemble import PackageInput, add_files, assemble
    from bastion.pipeline._entrypoint import check_startable
    from bastion.pipeline._layers import StagedLayers, plan_layers
    from bastion.pipeline._sbom import build_sbom, embedded_copy, embedded_path
    from bastion.sbom import image_purl, to_spdx

    packages = [
        PackageInput(p.name, p.version, p.architecture, p.source, p.source_version, debs[p.sha256], p.sha256)
        for p in locked.packages
    ]
    settings.home.mkdir(parents=True, exist_ok=True)
    work = settings.home / "work"
    work.mkdir(exist_ok=True)
    order = [p.name for p in _dependency_order(locked)]
    staged = StagedLayers(
        store, source_date_epoch=epoch, cache=PartCache(settings.cache_dir / "layer-parts")
    )  # each package's files are one gzip member, compressed once, then taken from the cache
    with tempfile.TemporaryDirectory(prefix=f"{variant.name}-", dir=work) as tmp, staged:
        task = progress.task(f"Assembling {variant.image} {variant.name} {platform}", total=None)
        rootfs = assemble(
            packages,
            variant,
            unpacked_dir=settings.cache_dir / "unpacked",
            source_date_epoch=epoch,
            os_release=os_release,
            apt_sources=sources,
        )
        runtime = _runtime_config(variant, epoch)
        # Before any layer is written: an image that could not start is refused with nothing stored.
        check_startable(rootfs, runtime, variant=variant.name, where=str(job.definition))
        # The packages' layers do not depend on what follows (Bastion's own files are the last layer):
        # they are written while the SBOM, the compliance scan and the image tests run.
        plans = plan_layers(rootfs.nodes, order)
        staged.start(plans[:-1])
        sbom = build_sbom(
            rootfs,
            locked,
            repository=variant.image,
            tag=variant.tags[0],
            platform=platform,
            epoch=epoch,
            cache_dir=settings.cache_dir,
        )
        embedded = to_spdx(embedded_copy(sbom))
        origin = "the build-time SPDX SBOM of this image (Bastion)"
        add_files(rootfs, [(embedded_path(), embedded, origin)], source_date_epoch=epoch)
        progress.finish(task)
        claims = None
        with contextlib.ExitStack() as stack:
            checking: Forked[_Claims] | None = None
            if variant.claimed_profiles and tests:
                # The compliance rules run in a child while this process runs the image tests. No
                # layer thread may run when it is made (a library lock one holds would stay held).
                staged.wait()
                checking = stack.enter_context(
                    Forked(lambda: _check_claims(variant, platform, rootfs, runtime, epoch, job, forked=True))
                )
            elif variant.claimed_profiles:  # nothing to overlap with: here, beside the layer threads
                claims = _check_claims(variant, platform, rootfs, runtime, epoch, job, forked=False)
            if tests:
                linked = settings.cache_dir / "unpacked" / "linked"
                _run_tests(variant, platform, rootfs, Path(tmp) / "rootfs", runtime, tests, linked)
                remove_abandoned(work)  # what a killed build's discard_later left
                discard_later(Path(tmp) / "rootfs", work)
            if checking is not None:
                claims = checking.result()
            if claims is not None:
                runtime = replace(runtime, labels={**runtime.labels, claims.label_key: claims.label})
        final = plan_layers(rootfs.nodes, order)
        if final[:-1] != plans[:-1]:
            raise InternalError("Bastion's own files changed a package layer after it was started")
        layers = staged.finish(final[-1:])
        history = [HistoryEntry(created_by=f"bastion {__version__}", comment=p.description) for p in final]
        manifest = put_image(
            store,
            platform=Platform.parse(platform),
            layers=layers,
            runtime=runtime,
            source_date_epoch=epoch,
            history=history,
            annotations=variant.annotations,
        )
    built = BuiltPlatform(platform, manifest, len(packages), len(layers), len(rootfs.removed))
    record = CachedPlatform(manifest, built.packages, built.layers, built.removed, tested)
    # The attested SBOM names the image by digest, which the embedded copy cannot.
    sbom.manifest_digest = manifest.digest
    sbom.root_purl = image_purl(variant.image, manifest.digest, platform)
    return _PlatformImage(built, sbom, _compliance_attestation(claims), (key, record))


@dataclass(frozen=True)
class _Claims:
    """What a build keeps of its compliance claims: the image label, and what makes the attestation
    predicate: the predicate itself when a child evaluated the claims (the result stays there), else
    the result, which makes it when asked."""

    label_key: str
    label: str
    predicate_type: str
    predicate: dict[str, Any] | None = None
    result: ClaimResult | None = None


def _check_claims(
    variant: Variant,
    platform: str,
    rootfs: Rootfs,
    runtime: RuntimeConfig,
    epoch: int,
    job: _Job,
    *,
    forked: bool,
) -> _Claims:
    """Evaluate the compliance profiles the variant claims on the assembled tree, with its waivers;
    fail the build on any unwaived failure, so the label naming the profiles can never lie."""
    from bastion.compliance import COMPLIANCE_LABEL, COMPLIANCE_PREDICATE_TYPE, evaluate_claims
    from bastion.pipeline._sbom import tree_target

    config = image_config(Platform.parse(platform), runtime, [], source_date_epoch=epoch, history=[])
    name = f"{variant.image}:{variant.tags[0]}"
    with tree_target(rootfs, name=name, platform=platform, config=config) as target:
        claims = evaluate_claims(
            target,
            variant.claimed_profiles,
            variant.compliance.waivers,
            time=rfc3339(epoch),
            base_dir=job.base_dir,
        )
    claims.require_passed()
    if not forked:
        return _Claims(COMPLIANCE_LABEL, claims.label, COMPLIANCE_PREDICATE_TYPE, result=claims)
    predicate = claims.predicate if job.attest else None
    return _Claims(COMPLIANCE_LABEL, claims.label, COMPLIANCE_PREDICATE_TYPE, predicate=predicate)


def _compliance_attestation(claims: _Claims | None) -> dict[str, Callable[[], dict[str, Any]]]:
    """Predicate type -> what makes the compliance predicate (made once: the attestation and the
    recipe-cache record take the same one); empty when nothing was claimed or nothing is signed."""
    if claims is None:
        return {}
    predicate, result = claims.predicate, claims.result
    if predicate is not None:
        return {claims.predicate_type: _constant(predicate)}
    if result is not None:  # made while the CycloneDX document is made in a child
        return {claims.predicate_type: functools.cache(lambda: result.predicate)}
    return {}


def _constant(value: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: value


def _sbom_source(sbom: Sbom | None, reference: str, settings: Settings) -> Callable[[], Sbom]:
    """The SBOM of a platform image: the one assembly made, or (for an image reused from the store)
    a scan of the stored image, which completes itself from the SBOM embedded in it."""

    def get() -> Sbom:
        from bastion.sbom import scan_image

        return sbom or scan_image(reference, settings)

    return get


def _dependencies(lock: LockFile, locked: LockedPlatform) -> tuple[Dependency, ...]:
    """What the build read, by digest: every .deb, and each signed InRelease it was resolved from."""
    items: list[tuple[str, str, str | None]] = [(p.url, p.sha256, p.name) for p in locked.packages]
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
    if platform == _host_platform():
        return mine
    tests = tuple(t for t in mine if isinstance(t, FileTest | AbsentTest))
    if skipped := len(mine) - len(tests):
        progress.warn(
            f"{variant.name} {platform}: {skipped} command/HTTP test(s) skipped "
            "(not the host's platform; no emulation)"
        )
    return tests


def _dependency_order(locked: LockedPlatform) -> list[LockedPackage]:
    """Packages ordered by how deep they sit below the requested ones, deepest (most shared) first."""
    parents = {p.name: p.required_by for p in locked.packages}

    def depth(name: str) -> int:
        seen = 0
        while (parent := parents.get(name)) is not None and seen < len(parents):
            name, seen = parent, seen + 1
        return seen

    return sorted(locked.packages, key=lambda p: (-depth(p.name), p.name))


def _runtime_config(variant: Variant, epoch: int) -> RuntimeConfig:
    env = {"PATH": DEFAULT_PATH, "SSL_CERT_FILE": CA_BUNDLE, **variant.environment}
    labels = {
        "org.opencontainers.image.created": rfc3339(epoch),
        "org.opencontainers.image.title": variant.image,
        "org.opencontainers.image.version": variant.tags[0],
        "org.opencontainers.image.vendor": "Bastion",
        LABEL_VARIANT: variant.name,
        **variant.labels,
    }
    return RuntimeConfig(
        user=variant.accounts.run_as,
        env=tuple(f"{k}={v}" for k, v in env.items()),
        entrypoint=tuple(variant.entrypoint or ()),
        cmd=tuple(variant.cmd or ()),
        working_dir=variant.work_dir or "",
        exposed_ports=tuple(variant.ports or ()),
        labels=labels,
        stop_signal=variant.stop_signal or "",
    )


def _apply_owners(rootfs: Rootfs, root: Path) -> None:
    """Give the work tree the image's numeric owners, as the sandbox's host ids stand for them
    (``host_owner``), so tests see what the image's user will see (``/home/nonroot`` is 0700 and must
    belong to 65532, a root-owned 0600 file is root's alone). Only root can; others test as-is."""

    if os.geteuid() != 0:
        return
    os.lchown(root, *host_owner(0, 0))
    for path, node in rootfs.nodes.items():
        os.lchown(root / path, *host_owner(node.entry.uid, node.entry.gid))


def _run_tests(
    variant: Variant,
    platform: str,
    rootfs: Rootfs,
    root: Path,
    runtime: RuntimeConfig,
    tests: Sequence[ImageCheck],
    linked: Path,
) -> None:
    """Run the image tests over the tree written as the directory ``root`` (the only time a build
    writes the image's files one by one). As root, the tests see the tree only through overlays of
    their own, so its package files are hard links to the copies kept in ``linked``."""
    from bastion.pipeline._assemble import materialise
    from bastion.pipeline._imagetest import run_image_tests

    if os.geteuid() == 0:
        materialise(rootfs, root, linked=linked, owner=host_owner)
    else:  # the tests write to this very tree: every file its own
        materialise(rootfs, root)
    _apply_owners(rootfs, root)
    env = dict(item.split("=", 1) for item in runtime.env)
    outcomes = run_image_tests(root, tests, user=runtime.user, env=env, workdir=runtime.working_dir)
    failed = [o for o in outcomes if not o.passed]
    if failed:
        first = failed[0]
        raise ImageTestFailed(
            f"image test {first.name!r} failed: {first.detail}"
            + (
                f" (and {len(failed) - 1} more: {', '.join(o.name for o in failed[1:])})"
                if len(failed) > 1
                else ""
            ),
            where=f"{variant.image} {variant.name} {platform}",
        )


def _host_platform() -> str:
    import platform as _platform

    machine = _platform.machine()
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(machine, f"linux/{machine}")
