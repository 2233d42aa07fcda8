"""The compliance proof producer (:class:`bastion.attest.ProofProducer`): the result of the profiles an
image claims (``docs/compliance.md``). The claims are evaluated where the image's tree is, before the
image is written (a failed claim stops the build, so the label naming the profiles cannot lie), so the
producer states what its caller evaluated (:data:`CLAIMS`): a build's assembly, or the recipe-cache
record of the build that assembled a reused image. An image whose claims nobody supplied gets none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.attest import COMPLIANCE_PREDICATE_TYPE, Fact, ProofContext, ProofProducer

__all__ = ["CLAIMS", "COMPLIANCE_PRODUCER"]

#: The compliance predicate of the profiles the image claims (:attr:`ClaimResult.predicate`).
CLAIMS: Fact[dict[str, Any]] = Fact("compliance claims")


@dataclass(frozen=True)
class _Compliance:
    name: str = "compliance"
    predicate_type: str = COMPLIANCE_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = ()
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        return {} if context.has(CLAIMS) else None

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        return context.get(CLAIMS)


COMPLIANCE_PRODUCER: ProofProducer = _Compliance()
