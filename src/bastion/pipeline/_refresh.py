"""The prove, sign and attach stages run again on their own, for an image already in the store: what the
factory does when only the vulnerability data changed (a new CVE scan and OpenVEX document, no
rebuild), or when another key must sign. ``bastion attest refresh`` is its command.

The image is not read into a build: each producer works from the stored image (the SBOM fact's
default scans it, completed from the SBOM embedded in it). What only a build knows (its record, for
provenance; the compliance claims evaluated on the assembled tree) is not made again here. With the
definition the image was built from, the OpenVEX document carries the statements of the variant that
built each platform image (its ``dev.bastion.variant`` label), as a build's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.errors import InputError
from bastion.identifiers import LABEL_VARIANT
from bastion.pipeline._signer import BuildSigner, statements_digest
from bastion.pipeline._stages import attest_image

if TYPE_CHECKING:
    from bastion.attest import Fact, ProducerRegistry
    from bastion.catalog import Definition
    from bastion.config import Settings
    from bastion.oci import Descriptor, Store

__all__ = ["Refreshed", "refresh"]

# An image config is a small document; the bound only keeps a damaged store from costing much.
_MAX_CONFIG = 4 * 1024 * 1024


@dataclass(frozen=True)
class Refreshed:
    """One platform image and the predicate types attached to it now (none: it had them all)."""

    platform: str
    digest: str
    attached: tuple[str, ...]


def refresh(
    reference: str,
    settings: Settings,
    signer: BuildSigner,
    producers: ProducerRegistry,
    *,
    platform: str | None = None,
    definition: Definition | None = None,
) -> list[Refreshed]:
    """Attach to each platform image of ``reference`` (a name in the local store) what it lacks of
    ``producers``' predicates signed by ``signer``, made from the data there is now; the image itself
    is not touched (its digest stays). Returns what was attached, per platform image."""
    from bastion.attest import ProofContext, open_image
    from bastion.oci import open_in_store

    store, _ = open_in_store(settings.store_dir, reference)  # attestations are attached in the store
    with open_image(reference, settings) as source:
        targets = source.targets(platform)
        top = source.top
    name = _repository(store, top.digest, reference)
    done = []
    for target in targets:
        facts: dict[Fact[Any], Any] = {}
        if definition is not None:
            facts.update(_statements(store, target.descriptor, definition))
        context = ProofContext(
            store, target.descriptor, name=name, platform=target.platform, settings=settings, facts=facts
        )
        attached = attest_image(context, producers, signer)
        done.append(Refreshed(target.platform, target.digest, tuple(a.predicate_type for a in attached)))
    return done


def _repository(store: Store, digest: str, reference: str) -> str:
    """The repository the store tags the image under, which the statements name it by (as a build
    names its images); the reference's own name part when no tag points at it."""
    for tag, desc in sorted(store.list_tags().items()):
        if desc.digest == digest:
            return tag.rpartition(":")[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    return reference.partition("@")[0] or reference


def _statements(store: Store, manifest: Descriptor, definition: Definition) -> dict[Fact[Any], Any]:
    """The VEX statements of the variant that built ``manifest`` (its config's variant label)."""
    from bastion.documents import load_json
    from bastion.vex import VEX_STATEMENTS, ImageVex

    config_desc = store.read_manifest(manifest).config
    where = f"{manifest.digest} config"
    config = load_json(store.read_blob(config_desc.digest, max_size=_MAX_CONFIG), where=where)
    labels = config.get("config", {}).get("Labels") if isinstance(config, dict) else None
    variant = labels.get(LABEL_VARIANT) if isinstance(labels, dict) else None
    if not isinstance(variant, str):
        raise InputError(
            f"{manifest.digest} has no {LABEL_VARIANT} label: not built by Bastion from a definition",
            hint="refresh it without --definition",
        )
    statements = definition.variant(variant).vex
    vex = ImageVex(statements, statements_digest(statements))
    return {VEX_STATEMENTS: lambda: vex}
