"""The SBOM's proof producers (:class:`bastion.attest.ProofProducer`): SPDX 2.3 and CycloneDX 1.6
documents of a platform image, made from one :data:`SBOM` fact. A build supplies the SBOM of the
tree it assembled; for an image already in the store the fact defaults to a scan of the stored image,
which completes itself from the SBOM embedded in it (:func:`bastion.sbom.complete_from_embedded`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.attest import CYCLONEDX_PREDICATE_TYPE, SPDX_PREDICATE_TYPE, Fact, ProofContext, ProofProducer

if TYPE_CHECKING:
    from bastion.sbom._model import Sbom

__all__ = ["CYCLONEDX_PRODUCER", "SBOM", "SPDX_PRODUCER"]


def _scan_stored(context: ProofContext) -> Sbom:
    from bastion.sbom._scan import scan_image

    return scan_image(context.reference, context.settings)


#: The SBOM of the image: the one assembly made, else a scan of the stored image.
SBOM: Fact[Sbom] = Fact("SBOM", default=_scan_stored)


@dataclass(frozen=True)
class _Spdx:
    name: str = "spdx"
    predicate_type: str = SPDX_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = (SBOM,)
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        return {}

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        from bastion.sbom._spdx import to_spdx

        predicate: dict[str, Any] = json.loads(to_spdx(context.get(SBOM)))
        return predicate


@dataclass(frozen=True)
class _CycloneDx:
    """The longest to make (cyclonedx-python-lib and its schema validation): a child makes it while
    the pipeline makes and signs the others."""

    name: str = "cyclonedx"
    predicate_type: str = CYCLONEDX_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = (SBOM,)
    separate_process: bool = True

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        return {}

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        from bastion.sbom._cyclonedx import to_cyclonedx

        predicate: dict[str, Any] = json.loads(to_cyclonedx(context.get(SBOM)))
        return predicate


SPDX_PRODUCER: ProofProducer = _Spdx()
CYCLONEDX_PRODUCER: ProofProducer = _CycloneDx()
