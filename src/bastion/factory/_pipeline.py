"""The factory's one door into the pipeline and the publishing functions ``bastion push`` and
``bastion verify`` use. Every stage function the factory runs is here, so that switching to the
pipeline's explicit stages (resolve -> fetch -> ... -> publish) changes this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion._progress import Progress
from bastion.catalog import Definition
from bastion.config import Settings
from bastion.errors import BastionError, VerificationFailed

if TYPE_CHECKING:
    from bastion.review import QueueEntry
    from bastion.vuln import ScanResult

__all__ = [
    "Built",
    "build",
    "is_test_failure",
    "move_tag",
    "push",
    "reattest",
    "resolve_lock",
    "scan",
    "verify",
]


@dataclass(frozen=True)
class Built:
    """One variant's image in the local store: its repository name, index digest and tags."""

    variant: str
    image: str
    digest: str
    tags: tuple[str, ...]
    platforms: int
    reused: bool


def build(
    definition: Definition,
    settings: Settings,
    *,
    key: str | None,
    progress: Progress,
    review: QueueEntry | None = None,
) -> list[Built]:
    """Build (from the lock, which the proposal refreshed), test, attest and sign every variant; with
    ``review`` (the upstream review the change passed) the images carry it as an attestation. A
    ``from:`` definition's lock is resolved again here, on the base image the job before it built."""
    from bastion.pipeline import build as pipeline_build
    from bastion.review import UPSTREAM_REVIEW

    facts = {UPSTREAM_REVIEW: lambda: review} if review is not None else None
    on_base = definition.from_ is not None
    results = pipeline_build(
        definition,
        settings,
        locked=not on_base,
        update=on_base,
        run_tests=True,
        attest=True,
        key=key,
        progress=progress,
        facts=facts,
    )
    return [
        Built(
            r.variant,
            r.references[0].rsplit(":", 1)[0],
            r.index.digest,
            tuple(ref.rsplit(":", 1)[1] for ref in r.references),
            len(r.platforms),
            all(p.cached for p in r.platforms),
        )
        for r in results
    ]


def resolve_lock(definition: Definition, settings: Settings, *, update: bool) -> str | None:
    """The lock text the pipeline's resolve stage gives ``definition`` now; None for a ``from:``
    definition whose base image is not in the store yet (its job resolves it on the base built first)."""
    import json

    from bastion.cache import Cache, Fetcher
    from bastion.pipeline import base_ready, resolve

    if definition.from_ is not None and not base_ready(definition, settings):
        return None
    with Fetcher(Cache(settings.cache_dir)) as fetcher:
        planned = resolve(definition, settings, fetcher, locked=False, update=update)
    return (
        json.dumps(planned.lock.model_dump(mode="json", by_alias=True), indent=2, ensure_ascii=False) + "\n"
    )


def is_test_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed image test (the pipeline's tests stage)."""
    from bastion.pipeline import ImageTestFailed

    return isinstance(error, ImageTestFailed)


def push(settings: Settings, digest: str, remote: str) -> int:
    """Push the stored image ``digest`` with every attestation to ``remote`` (``HOST/REPO@DIGEST``:
    by digest, so no tag moves); the number of attestations attached."""
    from bastion.attest import RegistryOptions
    from bastion.attest import push as push_attested
    from bastion.oci import Store, parse_reference

    target = parse_reference(remote)
    store = Store(settings.store_dir)
    with RegistryOptions().client(target.registry) as client:
        return push_attested(store, digest, remote, client).artifacts


def verify(settings: Settings, remote: str, public_key: Path) -> int:
    """``bastion verify``'s check of the pushed image, read back from the registry: every platform has
    verified SBOM and provenance attestations signed by ``public_key``; the number of checks."""
    from bastion.attest import DEFAULT_REQUIRED, RegistryOptions, Verifier, open_image, verify_image

    if not public_key.is_file():
        raise BastionError("no public key to verify the published image with", where=str(public_key))
    verifier = Verifier.from_files([public_key])
    # registry:// : read back from the registry, never from the local store that built it.
    with open_image("registry://" + remote, settings, RegistryOptions()) as source:
        report = verify_image(source, verifier, list(DEFAULT_REQUIRED))
    if not report.checks or not report.ok:
        failed = [c for c in report.checks if not c.ok]
        reason = failed[0].reason if failed else "nothing to verify"
        raise VerificationFailed(f"published attestations do not verify: {reason}", where=remote)
    return len(report.checks)


def move_tag(settings: Settings, repository: str, tag: str, digest: str) -> None:
    """Point ``repository:tag`` at ``digest`` (already pushed): the last step of a publication."""
    from bastion.attest import RegistryOptions
    from bastion.oci import Store, parse_reference

    target = parse_reference(f"{repository}@{digest}")
    store = Store(settings.store_dir)
    media_type = store.resolve(digest).media_type
    with RegistryOptions().client(target.registry) as client:
        client.put_manifest(target.repository, tag, store.read_blob(digest), media_type)


def scan(settings: Settings, remote: str) -> ScanResult | None:
    """The CVE scan of the pushed image ``remote`` (``HOST/REPO@DIGEST``) with the current
    vulnerability database; None without a database (nothing to start a clock from)."""
    from bastion.vuln import database_path, load_sbom, require_database, scan_sbom

    if not database_path(settings.home).exists():
        return None
    database = require_database(settings)
    try:
        return scan_sbom(load_sbom(remote, settings), database)
    finally:
        database.close()


def reattest(settings: Settings, digest: str, remote: str, *, key: str | None) -> int:
    """``bastion attest refresh`` on the stored image ``digest`` (the pipeline's prove -> sign ->
    attach, made from the vulnerability data there is now: a new CVE scan and OpenVEX), then the new
    attestations pushed to ``remote`` (``HOST/REPO@DIGEST``); the number of attestations attached."""
    from bastion._progress import Silent
    from bastion.pipeline import BuildSigner, default_producers, refresh

    refreshed = refresh(digest, settings, BuildSigner(key, settings, Silent()), default_producers())
    if not any(r.attached for r in refreshed):
        return 0
    push(settings, digest, remote)
    return sum(len(r.attached) for r in refreshed)
