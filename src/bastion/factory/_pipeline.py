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

__all__ = ["Built", "build", "is_test_failure", "move_tag", "push", "verify"]


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
    ``review`` (the upstream review the change passed) the images carry it as an attestation."""
    from bastion.pipeline import build as pipeline_build
    from bastion.review import UPSTREAM_REVIEW

    facts = {UPSTREAM_REVIEW: lambda: review} if review is not None else None
    results = pipeline_build(
        definition,
        settings,
        locked=True,
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
