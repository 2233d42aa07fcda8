"""Re-scanning the published images with the current vulnerability data, and starting or stopping
their clocks (issue 20 item 4: a database import that changes an image's findings re-scans and
re-attests the *published* image, no rebuild).

``bastion db import``/``db update`` know nothing of the factory, so ``bastion sla rescan`` (and, later,
``factory run`` after an import) calls :func:`rescan`: each image's newest publication (recorded in
``publications``) is opened by its reference and digest, scanned, and observed
(:func:`~bastion.factory._cveclock.observe`); when its findings changed, the re-attestation hook runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bastion.errors import BastionError
from bastion.factory._cveclock import Observation, Publication, current_publications, observe

if TYPE_CHECKING:
    from bastion.config import Settings
    from bastion.factory._state import FactoryState
    from bastion.vuln import ScanResult

__all__ = ["Reattest", "Rescanned", "reattest_published", "rescan"]

#: Called for a publication whose findings changed, with the new scan; True when the image's
#: CVE-scan and OpenVEX attestations were replaced.
Reattest = Callable[["Settings", Publication, "ScanResult"], bool]


def reattest_published(settings: Settings, publication: Publication, scan: ScanResult) -> bool:
    """The re-attestation hook: the pipeline's refresh stage (``bastion attest refresh``: prove ->
    sign -> attach, from the vulnerability data there is now) on the published image as the local
    store holds it, signed with the factory's key, then the new CVE-scan and OpenVEX attestations
    pushed to the registry beside the published digest. False when nothing new was attached, the
    reference names no registry, or the image is no longer in the local store (nothing to sign it
    from)."""
    from bastion.factory import _pipeline as pipeline
    from bastion.factory._config import FactoryConfig
    from bastion.oci import Store, is_registry_reference

    del scan  # the refresh scans the stored image again with the same data
    if not is_registry_reference(publication.reference):  # the factory publishes to registries only
        return False
    if Store(settings.store_dir).find(publication.digest) is None:
        return False
    config = FactoryConfig.from_env(settings)
    remote = f"{publication.reference}@{publication.digest}"
    return pipeline.reattest(settings, publication.digest, remote, key=config.key) > 0


@dataclass(frozen=True)
class Rescanned:
    """One published image re-scanned: what the clock did, whether it was re-attested, or why the
    scan failed (one line; the other images go on)."""

    publication: Publication
    observation: Observation | None = None
    reattested: bool = False
    error: str | None = None


def rescan(
    state: FactoryState,
    settings: Settings,
    *,
    now: datetime,
    images: Sequence[str] = (),
    reattest: Reattest = reattest_published,
) -> list[Rescanned]:
    """Scan every image's newest publication (of ``images`` when given) with the current
    vulnerability database and observe the findings at ``now``."""
    from bastion.vuln import load_sbom, require_database, scan_sbom

    wanted = set(images)
    targets = [p for p in current_publications(state) if not wanted or p.image in wanted]
    if not targets:
        return []
    database = require_database(settings)
    results = []
    try:
        for publication in targets:
            reference = f"{publication.reference}@{publication.digest}"
            try:
                scan = scan_sbom(load_sbom(reference, settings), database)
            except BastionError as err:
                results.append(Rescanned(publication, error=err.diagnostic()))
                continue
            observation = observe(
                state, publication.image, publication.digest, scan, now=now, published=False
            )
            reattested = reattest(settings, publication, scan) if observation.changed else False
            results.append(Rescanned(publication, observation, reattested))
    finally:
        database.close()
    return results
