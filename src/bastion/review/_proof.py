"""The upstream review's proof producer (:class:`bastion.attest.ProofProducer`): the decided review of
the upstream change an image was built from, as the predicate ``upstream-review/v1`` — versions
compared, rules with their versions, findings, score, verdict, and the decision (reviewer, reason).

Only the caller that reviewed the change knows it: the factory supplies the :data:`UPSTREAM_REVIEW`
fact for an image built from a reviewed proposal; a plain ``bastion build`` has none, and the producer
has nothing to make. The attestation records the review id (:data:`ANNOTATION_REVIEW_ID`), so an
image rebuilt after another review gets that review attached too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.attest import Fact
from bastion.identifiers import ANNOTATION_REVIEW_ID
from bastion.review._report import PREDICATE_TYPE

if TYPE_CHECKING:
    from bastion.attest import ProofContext, ProofProducer
    from bastion.review._queue import QueueEntry

__all__ = ["REVIEW_PRODUCER", "UPSTREAM_REVIEW"]

#: The decided review-queue record of the change the image was built from (no default: only the
#: caller that reviewed the change has one).
UPSTREAM_REVIEW: Fact[QueueEntry] = Fact("upstream review")


@dataclass(frozen=True)
class _UpstreamReview:
    name: str = "upstream-review"
    predicate_type: str = PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = ()
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        if not context.has(UPSTREAM_REVIEW):
            return None
        return {ANNOTATION_REVIEW_ID: context.get(UPSTREAM_REVIEW).id}

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        entry = context.get(UPSTREAM_REVIEW)
        if entry.status not in ("approved", "passed"):
            return None  # a change nobody let through is never stated as reviewed
        return {"subject": entry.subject, **entry.predicate()}


REVIEW_PRODUCER: ProofProducer = _UpstreamReview()
