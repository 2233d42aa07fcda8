"""The stages that make one platform image: assemble → test → write image.

Each is a function of its inputs (:class:`PlatformInputs`, and what the stage before returned) in one
:func:`workspace`: the layer writer whose package layers are started at assembly and written while the
SBOM, the compliance claims and the image tests run (Bastion's own files are the last layer), and the
directory the tests' tree is written to. Nothing is stored unless every stage passed: the image's
layers are committed, and its manifest written, by :func:`write_image` only.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion import __version__
from bastion._forked import Forked
from bastion._progress import Progress
from bastion.catalog import Variant
from bastion.config import Settings
from bastion.errors import BastionError, ExitCode, InternalError
from bastion.identifiers import LABEL_VARIANT
from bastion.lock import LockedPackage, LockedPlatform
from bastion.oci import (
    Descriptor,
    HistoryEntry,
    PartCache,
    Platform,
    RuntimeConfig,
    Store,
    image_config,
    put_image,
    remove_abandoned,
    rfc3339,
)
from bastion.pipeline._aptsources import AptSource
from bastion.pipeline._hostids import host_owner
from bastion.pipeline._release import OsRelease
from bastion.pipeline._tree import discard_later

if TYPE_CHECKING:
    from bastion.compliance import ClaimResult
    from bastion.pipeline._assemble import Rootfs
    from bastion.pipeline._base import BaseImage
    from bastion.pipeline._imagetest import ImageCheck
    from bastion.pipeline._layers import LayerPlan, StagedLayers
    from bastion.sbom import Sbom
    from bastion.source import Upstream

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class ImageTestFailed(BastionError):
    """A definition's image test failed: the image is not tagged (exit code 1, a failed verification)."""

    exit_code = ExitCode.FINDINGS


@dataclass(frozen=True)
class PlatformInputs:
    """What one platform image is made of (its recipe, :func:`bastion.pipeline._cache.recipe_key`)."""

    variant: Variant
    platform: str
    locked: LockedPlatform
    debs: Mapping[str, Path]  # the fetch stage's verified package files, by SHA256
    epoch: int
    os_release: OsRelease
    sources: tuple[AptSource, ...]  # a dev image's apt sources
    upstream: Upstream | None = None  # the build-upstream stage's outputs (builds:, artifacts:)
    base: BaseImage | None = None  # from: the base image's layers, below this image's own

    @property
    def in_base(self) -> frozenset[str]:
        """The packages the base image's layers hold (none without ``from:``)."""
        return self.base.packages if self.base is not None else frozenset()


@dataclass(frozen=True)
class Workspace:
    store: Store
    settings: Settings
    progress: Progress
    staged: StagedLayers
    work: Path  # BASTION_HOME/work
    tree: Path  # where the image tests' tree is written


@contextlib.contextmanager
def workspace(
    store: Store, settings: Settings, progress: Progress, inputs: PlatformInputs
) -> Iterator[Workspace]:
    """The layer writer and work directory of one platform image; left, it removes what was not
    committed."""
    from bastion.pipeline._layers import StagedLayers

    settings.home.mkdir(parents=True, exist_ok=True)
    work = settings.home / "work"
    work.mkdir(exist_ok=True)
    staged = StagedLayers(
        store, source_date_epoch=inputs.epoch, cache=PartCache(settings.cache_dir / "layer-parts")
    )  # each package's files are one gzip member, compressed once, then taken from the cache
    with tempfile.TemporaryDirectory(prefix=f"{inputs.variant.name}-", dir=work) as tmp, staged:
        yield Workspace(store, settings, progress, staged, work, Path(tmp) / "rootfs")


@dataclass(frozen=True)
class Assembled:
    rootfs: Rootfs
    runtime: RuntimeConfig
    order: tuple[str, ...]  # package names, deepest first: the layer grouping
    plans: tuple[LayerPlan, ...]  # the package layers started at assembly, and the last one as planned then
    sbom: Sbom  # of the assembled tree, as the image embeds it (named by tag: no digest yet)


def assemble_platform(inputs: PlatformInputs, ws: Workspace, *, definition: Path) -> Assembled:
    """The image tree in memory, without maintainer scripts; refused, before any layer is written, if
    the image could not start; the package layers started; the SBOM made and embedded."""
    from bastion.pipeline._assemble import PackageInput, add_built, add_files, assemble
    from bastion.pipeline._entrypoint import check_startable
    from bastion.pipeline._layers import plan_layers
    from bastion.pipeline._sbom import build_sbom, embedded_copy, embedded_path
    from bastion.sbom import to_spdx

    variant, platform, epoch = inputs.variant, inputs.platform, inputs.epoch
    packages = [
        PackageInput(
            p.name, p.version, p.architecture, p.source, p.source_version, inputs.debs[p.sha256], p.sha256
        )
        for p in inputs.locked.packages
    ]
    order = tuple(p.name for p in dependency_order(inputs.locked))
    task = ws.progress.task(f"Assembling {variant.image} {variant.name} {platform}", total=None)
    rootfs = assemble(
        packages,
        variant,
        unpacked_dir=ws.settings.cache_dir / "unpacked",
        source_date_epoch=epoch,
        os_release=inputs.os_release,
        apt_sources=inputs.sources,
    )
    upstream = inputs.upstream
    if upstream is not None:
        add_built(rootfs, upstream.files, source_date_epoch=epoch)
    runtime = runtime_config(variant, epoch)
    # Before any layer is written: an image that could not start is refused with nothing stored.
    check_startable(rootfs, runtime, variant=variant.name, where=str(definition))
    # The packages' layers do not depend on what follows (Bastion's own files are the last layer):
    # they are written while the SBOM, the compliance scan and the image tests run.
    plans = plan_layers(rootfs.nodes, order, in_base=inputs.in_base)
    ws.staged.start(plans[:-1])
    sbom = build_sbom(
        rootfs,
        inputs.locked,
        repository=variant.image,
        tag=variant.tags[0],
        platform=platform,
        epoch=epoch,
        cache_dir=ws.settings.cache_dir,
        upstream=upstream.components if upstream is not None else (),
    )
    embedded = to_spdx(embedded_copy(sbom))
    origin = "the build-time SPDX SBOM of this image (Bastion)"
    add_files(rootfs, [(embedded_path(), embedded, origin)], source_date_epoch=epoch)
    ws.progress.finish(task)
    return Assembled(rootfs, runtime, order, tuple(plans), sbom)


@dataclass(frozen=True)
class Tested:
    runtime: RuntimeConfig  # with the label naming the compliance profiles that passed
    claims: Claims | None  # None when the variant claims no profile
    report: dict[str, Any] | None = None  # the test-report predicate; None when no test ran


def check_platform(
    inputs: PlatformInputs,
    assembled: Assembled,
    ws: Workspace,
    tests: Sequence[ImageCheck],
    *,
    base_dir: Path,
    attest: bool,
) -> Tested:
    """The compliance profiles the variant claims and its image tests, on the assembled tree; either
    failing fails the build. The compliance rules run in a child while this process runs the tests."""
    variant, platform, rootfs, runtime = inputs.variant, inputs.platform, assembled.rootfs, assembled.runtime
    claims = report = None
    with contextlib.ExitStack() as stack:
        checking: Forked[Claims] | None = None
        if variant.claimed_profiles and tests:
            # No layer thread may run when the child is made (a library lock one holds would stay held).
            ws.staged.wait()
            checking = stack.enter_context(
                Forked(lambda: _check_claims(inputs, rootfs, runtime, base_dir, attest=attest, forked=True))
            )
        elif variant.claimed_profiles:  # nothing to overlap with: here, beside the layer threads
            claims = _check_claims(inputs, rootfs, runtime, base_dir, attest=attest, forked=False)
        if tests:
            linked = ws.settings.cache_dir / "unpacked" / "linked"
            report = _run_tests(variant, platform, rootfs, ws.tree, runtime, tests, linked)
            remove_abandoned(ws.work)  # what a killed build's discard_later left
            discard_later(ws.tree, ws.work)
        if checking is not None:
            claims = checking.result()
        if claims is not None:
            runtime = replace(runtime, labels={**runtime.labels, claims.label_key: claims.label})
    return Tested(runtime, claims, report)


@dataclass(frozen=True)
class Written:
    manifest: Descriptor
    layers: int


def write_image(inputs: PlatformInputs, assembled: Assembled, tested: Tested, ws: Workspace) -> Written:
    """The last layer (Bastion's own files) and the image manifest, committed to the store."""
    from bastion.pipeline._layers import plan_layers

    final = plan_layers(assembled.rootfs.nodes, assembled.order, in_base=inputs.in_base)
    if tuple(final[:-1]) != assembled.plans[:-1]:
        raise InternalError("Bastion's own files changed a package layer after it was started")
    layers = ws.staged.finish(final[-1:])
    history = [HistoryEntry(created_by=f"bastion {__version__}", comment=p.description) for p in final]
    if inputs.base is not None:  # from: the base's layers first, by digest, as they are
        layers = [*inputs.base.layers, *layers]
        history = [*inputs.base.history, *history]
    manifest = put_image(
        ws.store,
        platform=Platform.parse(inputs.platform),
        layers=layers,
        runtime=tested.runtime,
        source_date_epoch=inputs.epoch,
        history=history,
        annotations=inputs.variant.annotations,
    )
    return Written(manifest, len(layers))


@dataclass(frozen=True)
class Claims:
    """What a build keeps of its compliance claims: the image label, and what makes the attestation
    predicate: the predicate itself when a child evaluated the claims (the result stays there), else
    the result, which makes it when asked."""

    label_key: str
    label: str
    predicate_type: str
    predicate: dict[str, Any] | None = None
    result: ClaimResult | None = None


def _check_claims(
    inputs: PlatformInputs,
    rootfs: Rootfs,
    runtime: RuntimeConfig,
    base_dir: Path,
    *,
    attest: bool,
    forked: bool,
) -> Claims:
    """Evaluate the compliance profiles the variant claims on the assembled tree, with its waivers;
    fail the build on any unwaived failure, so the label naming the profiles can never lie."""
    from bastion.compliance import COMPLIANCE_LABEL, COMPLIANCE_PREDICATE_TYPE, evaluate_claims
    from bastion.pipeline._sbom import tree_target

    variant, platform, epoch = inputs.variant, inputs.platform, inputs.epoch
    config = image_config(Platform.parse(platform), runtime, [], source_date_epoch=epoch, history=[])
    name = f"{variant.image}:{variant.tags[0]}"
    with tree_target(rootfs, name=name, platform=platform, config=config) as target:
        claims = evaluate_claims(
            target,
            variant.claimed_profiles,
            variant.compliance.waivers,
            time=rfc3339(epoch),
            base_dir=base_dir,
        )
    claims.require_passed()
    if not forked:
        return Claims(COMPLIANCE_LABEL, claims.label, COMPLIANCE_PREDICATE_TYPE, result=claims)
    predicate = claims.predicate if attest else None
    return Claims(COMPLIANCE_LABEL, claims.label, COMPLIANCE_PREDICATE_TYPE, predicate=predicate)


def assembly_attestations(tested: Tested) -> dict[str, Callable[[], dict[str, Any]]]:
    """Predicate type -> what makes each predicate only assembly can make: the compliance claims (made
    once: the attestation and the recipe-cache record take the same one; none when nothing was claimed
    or nothing is signed) and the test report (none when no test ran)."""
    from bastion.attest import TEST_REPORT_PREDICATE_TYPE

    made: dict[str, Callable[[], dict[str, Any]]] = {}
    if tested.report is not None:
        made[TEST_REPORT_PREDICATE_TYPE] = constant(tested.report)
    claims = tested.claims
    if claims is None:
        return made
    predicate, result = claims.predicate, claims.result
    if predicate is not None:
        made[claims.predicate_type] = constant(predicate)
    elif result is not None:  # made while the CycloneDX document is made in a child
        made[claims.predicate_type] = functools.cache(lambda: result.predicate)
    return made


def constant(value: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: value


def dependency_order(locked: LockedPlatform) -> list[LockedPackage]:
    """Packages ordered by how deep they sit below the requested ones, deepest (most shared) first."""
    parents = {p.name: p.required_by for p in locked.packages}

    def depth(name: str) -> int:
        seen = 0
        while (parent := parents.get(name)) is not None and seen < len(parents):
            name, seen = parent, seen + 1
        return seen

    return sorted(locked.packages, key=lambda p: (-depth(p.name), p.name))


def runtime_config(variant: Variant, epoch: int) -> RuntimeConfig:
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
) -> dict[str, Any]:
    """Run the image tests over the tree written as the directory ``root`` (the only time a build
    writes the image's files one by one); their report, once every one passed. As root, the tests see
    the tree only through overlays of their own, so its package files are hard links to the copies kept
    in ``linked``."""
    from bastion.pipeline._assemble import materialise
    from bastion.pipeline._imagetest import run_image_tests
    from bastion.pipeline._testreport import report_of

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
    return report_of(tests, outcomes, platform=platform)
