"""The pipeline's stages, from a definition to a signed, published image, each a function of its inputs:

    resolve → fetch → build upstream → assemble → test → write image → prove → sign → attach → publish

:func:`resolve` and :func:`fetch` give the verified package supply (``bastion lock``, ``fetch`` and
``packages`` run them, and so does a build); :func:`build_upstream` runs a definition's ``builds:``
in the sandbox (or takes their outputs from the build cache) and reads its ``artifacts:``; assemble, test and write image make one platform image
(:mod:`bastion.pipeline._platform`); :func:`prove` runs the registered proof producers
(:class:`bastion.attest.ProofProducer`) for an image in the store, :func:`sign` signs what they
return, :func:`attach` attaches it, and :func:`publish` pushes the image with its attestations.
``bastion build`` (:func:`bastion.pipeline.build`) runs them in order; :func:`attest_image` runs the
last three again on their own, for an image already in the store (``bastion attest refresh``: only
the vulnerability data changed, or another key must sign).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion._clock import rfc3339
from bastion._forked import Forked

if TYPE_CHECKING:
    from bastion._progress import Progress
    from bastion.attest import ProducerRegistry, ProofContext, ProofProducer, Published, RegistryOptions
    from bastion.cache import Fetcher
    from bastion.catalog import Definition
    from bastion.config import Settings
    from bastion.lock import LockFile, Planned
    from bastion.oci import Descriptor, Store, TransferStats
    from bastion.pipeline._signer import BuildSigner
    from bastion.source import Upstream

__all__ = [
    "Attached",
    "Fetched",
    "Pending",
    "Proof",
    "SignedProof",
    "attach",
    "attest_image",
    "build_upstream",
    "chosen_platforms",
    "default_producers",
    "fetch",
    "outstanding",
    "prove",
    "publish",
    "resolve",
    "select_locked",
    "sign",
    "supply",
]


# -- resolve, fetch ----------------------------------------------------------------------------------


@contextlib.contextmanager
def supply(settings: Settings, progress: Progress) -> Iterator[Fetcher]:
    """The verified download cache the resolve and fetch stages read through, open inside the block."""
    from bastion.cache import Cache, Fetcher

    with Fetcher(Cache(settings.cache_dir), progress=progress) as fetcher:
        yield fetcher


def resolve(
    definition: Definition, settings: Settings, fetcher: Fetcher, *, locked: bool, update: bool = False
) -> Planned:
    """The exact package set of ``definition``: its lock file's when that satisfies it (``locked``
    requires it), else every variant and platform resolved afresh from verified indices; nothing is
    written (:meth:`bastion.lock.Planned.save`, once the caller succeeded). A ``from:`` definition
    is resolved on its base image as the store holds it now (:mod:`bastion.pipeline._base`)."""
    from bastion.lock import plan

    base = None
    if definition.from_ is not None and not locked:
        from bastion.oci import Store
        from bastion.pipeline._base import base_supply

        base = base_supply(definition, Store(settings.store_dir))
    return plan(definition, settings, fetcher, locked=locked, update=update, base=base)


def chosen_platforms(
    definition: Definition, variants: Sequence[str] | None, platforms: Sequence[str] | None
) -> list[str] | None:
    """``platforms`` (``--platform``) in the definition's spelling (``linux/armhf`` is
    ``linux/arm/v7``), each once; each must be one that every chosen variant (all when ``variants``
    is not given) builds, since a lock holds only what the definition lists and nothing a caller
    passes can add to it. None when no platform was given."""
    from bastion.debian import debian_platform
    from bastion.errors import InputError

    if not platforms:
        return None
    names = variants or definition.variant_names()
    builds = {name: definition.variant(name).platforms for name in names}  # an unknown variant is refused
    chosen: list[str] = []
    for text in platforms:
        try:
            normal = str(debian_platform(text))
        except InputError:
            normal = text  # refused below, as a platform no variant builds
        for name, allowed in builds.items():
            if normal not in allowed:
                whose = (
                    f"definition {definition.name!r}"
                    if len(set(builds.values())) == 1
                    else f"variant {name!r}"
                )
                raise InputError(
                    f"--platform {text}: {whose} builds {', '.join(allowed)}",
                    where=str(definition.path),
                    hint="to build another platform, add it to `platforms:` in the definition",
                )
        if normal not in chosen:
            chosen.append(normal)
    return chosen


def select_locked(
    lock: LockFile, variants: Sequence[str] | None, platforms: Sequence[str] | None
) -> tuple[tuple[str, str], ...]:
    """The (variant, platform) pairs of ``lock`` that ``variants`` and ``platforms`` choose (all when
    not given)."""
    return tuple(
        (v, p)
        for v, per_platform in lock.variants.items()
        if not variants or v in variants
        for p in per_platform
        if not platforms or p in platforms
    )


@dataclass(frozen=True)
class Fetched:
    """The package files of the chosen (variant, platform) pairs, verified, by SHA256."""

    selection: tuple[tuple[str, str], ...]
    debs: Mapping[str, Path]


def fetch(
    planned: Planned, fetcher: Fetcher, selection: Sequence[tuple[str, str]], *, unpack_to: Path | None = None
) -> Fetched:
    """Every package the ``selection`` needs, each checked against its locked digest and size before
    it enters the cache; a lock read from its file names that file when a package cannot be had. With
    ``unpack_to`` (a build), each package downloaded is unpacked there while the others download."""
    from bastion.lock import fetch_packages

    from_file = None if planned.resolved else planned.definition
    if unpack_to is None:
        return Fetched(
            tuple(selection), fetch_packages(planned.lock, fetcher, selection, definition=from_file)
        )
    from bastion.pipeline._unpacked import EarlyUnpack

    with EarlyUnpack(unpack_to) as early:
        fetcher.on_fetched = early.submit
        debs = fetch_packages(planned.lock, fetcher, selection, definition=from_file)
    return Fetched(tuple(selection), debs)


# -- build upstream ------------------------------------------------------------------------------------


def build_upstream(
    definition: Definition, settings: Settings, fetcher: Fetcher, platforms: Sequence[str], progress: Progress
) -> dict[str, Upstream]:
    """For each platform, the files a definition's ``builds:`` and ``artifacts:`` put into its images,
    with their SBOM components and the inputs the provenance lists (:func:`bastion.source.build_upstream`:
    verified sources, commands in the sandbox, outputs cached by the digest of their inputs)."""
    from bastion.source import build_upstream as build_one

    return {p: build_one(definition, settings, fetcher, p, progress=progress) for p in platforms}


# -- prove, sign, attach -------------------------------------------------------------------------------


def default_producers() -> ProducerRegistry:
    """Every proof a build attaches, in the order it attaches them: the SBOM (SPDX, CycloneDX), SLSA
    provenance, the compliance claims, the report of the image tests that ran, with a vulnerability
    database the CVE scan and OpenVEX, and for an image built from a reviewed upstream change (the
    factory) the upstream review."""
    from bastion.attest import PROVENANCE_PRODUCER, ProducerRegistry
    from bastion.compliance import COMPLIANCE_PRODUCER
    from bastion.pipeline._testreport import TEST_REPORT_PRODUCER
    from bastion.review import REVIEW_PRODUCER
    from bastion.sbom import CYCLONEDX_PRODUCER, SPDX_PRODUCER
    from bastion.vex import CVE_SCAN_PRODUCER, OPENVEX_PRODUCER

    return ProducerRegistry(
        [
            SPDX_PRODUCER,
            CYCLONEDX_PRODUCER,
            PROVENANCE_PRODUCER,
            COMPLIANCE_PRODUCER,
            TEST_REPORT_PRODUCER,
            CVE_SCAN_PRODUCER,
            OPENVEX_PRODUCER,
            REVIEW_PRODUCER,
        ]
    )


@dataclass(frozen=True)
class Pending:
    """A producer whose predicate the image lacks, and the annotations its attestation records."""

    producer: ProofProducer
    annotations: Mapping[str, str]


def outstanding(context: ProofContext, producers: Iterable[ProofProducer], key_hint: str) -> list[Pending]:
    """The producers with something to make for ``context`` whose predicate is not attached yet signed
    by the key ``key_hint`` names, made from the same inputs (``ProofProducer.inputs``): a rebuild of an
    unchanged image signs nothing, one with newer vulnerability data signs a new CVE scan."""
    from bastion.attest import bundle_key_hint, stored_bundles

    wanted = [(p, inputs) for p in producers if (inputs := p.inputs(context)) is not None]
    if not wanted:
        return []
    attached = [
        b
        for b in stored_bundles(
            context.store, context.subject.digest, max_size=context.settings.max_attestation_size
        )
        if bundle_key_hint(b.bundle) == key_hint
    ]
    return [
        Pending(producer, inputs)
        for producer, inputs in wanted
        if not any(
            b.predicate_type == producer.predicate_type
            and all(b.manifest.annotations.get(k, "") == v for k, v in inputs.items())
            for b in attached
        )
    ]


@dataclass(frozen=True)
class Proof:
    predicate_type: str
    predicate: dict[str, Any]
    annotations: Mapping[str, str]  # what it was made from, recorded on the attestation


def prove(context: ProofContext, pending: Sequence[Pending]) -> Iterator[Proof]:
    """Each pending producer's predicate, as it is made (a producer with nothing to state is left
    out). Those made in a separate process start first and come last, so what the caller does with
    the others (signing them) overlaps with them."""
    with contextlib.ExitStack() as stack:
        children: list[tuple[Pending, Forked[dict[str, Any] | None]]] = []
        for item in pending:
            if item.producer.separate_process:
                for fact in item.producer.needs:  # made here, once, before the child starts
                    context.get(fact)
                children.append((item, stack.enter_context(Forked(_producing(item.producer, context)))))
        here = [(item, item.producer.produce) for item in pending if not item.producer.separate_process]
        for item, produce in here:
            if (predicate := produce(context)) is not None:
                yield Proof(item.producer.predicate_type, predicate, item.annotations)
        for item, child in children:
            if (predicate := child.result()) is not None:
                yield Proof(item.producer.predicate_type, predicate, item.annotations)


def _producing(producer: ProofProducer, context: ProofContext) -> Callable[[], dict[str, Any] | None]:
    return lambda: producer.produce(context)


@dataclass(frozen=True)
class SignedProof:
    proof: Proof
    bundle: bytes  # a Sigstore bundle v0.3 of the in-toto statement about the image


def sign(proofs: Iterable[Proof], context: ProofContext, signer: BuildSigner) -> list[SignedProof]:
    """Each proof as an in-toto statement about the image, signed in a Sigstore bundle (the key is
    loaded when the first proof is ready)."""
    from bastion.attest import Subject, make_statement, sign_statement

    subject = Subject.for_digest(context.name, context.subject.digest)
    signed = []
    for proof in proofs:
        statement = make_statement([subject], proof.predicate_type, proof.predicate)
        signed.append(SignedProof(proof, sign_statement(statement, signer.signer())))
    return signed


@dataclass(frozen=True)
class Attached:
    predicate_type: str
    descriptor: Descriptor  # the artifact manifest in the store, a referrer of the image


def attach(store: Store, subject: Descriptor, signed: Iterable[SignedProof]) -> list[Attached]:
    """Attach each bundle to ``subject`` as cosign v3 does (an OCI 1.1 artifact), with the inputs it
    was made from as annotations, all with one creation time."""
    from bastion.attest import attach_bundle

    created = rfc3339()
    return [
        Attached(
            item.proof.predicate_type,
            attach_bundle(
                store,
                subject,
                item.bundle,
                predicate_type=item.proof.predicate_type,
                created=created,
                annotations={k: v for k, v in item.proof.annotations.items() if v} or None,
            ),
        )
        for item in signed
    ]


def attest_image(context: ProofContext, producers: ProducerRegistry, signer: BuildSigner) -> list[Attached]:
    """Prove, sign and attach what the image in ``context`` lacks of ``producers``' predicates, signed
    by ``signer``; attached in the registry's order. Returns the attestations attached."""
    pending = outstanding(context, producers, signer.hint)
    if not pending:
        return []
    order = {item.producer.predicate_type: n for n, item in enumerate(pending)}
    signed = sorted(
        sign(prove(context, pending), context, signer), key=lambda s: order[s.proof.predicate_type]
    )
    return attach(context.store, context.subject, signed)


# -- publish -------------------------------------------------------------------------------------------


def publish(
    store: Store, image: str, remote: str, registry: RegistryOptions, *, stats: TransferStats | None = None
) -> Published:
    """Push ``image`` from the store to ``remote``, every platform and every attestation."""
    from bastion.attest import push
    from bastion.oci import parse_reference

    with registry.client(parse_reference(remote).registry) as client:
        return push(store, image, remote, client, stats=stats)
