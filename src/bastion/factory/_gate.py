"""The review gate (issue 22 items 4, 5): a proposal from a tracker whose definition names its upstream
source (``review:``, docs/definitions.md "The review gate") passes only when the upstream diff
guardrail's verdict, through the definition's policy, or a person lets it through.

The guardrail reviews the change between the git ref of the value the definition is built with and the
ref of the proposed value, in the local clone or mirror ``review.repo`` names, and the review is recorded
in the review queue (``BASTION_HOME/reviews``, ``bastion review list``) under a subject naming the
definition, the tracker and both refs: the same change is the same record in every cycle. The policy
acts on the verdict: ``merge`` approves it (reviewer ``guardrail``), ``block`` rejects it (reviewer
``guardrail``), ``wait`` leaves it pending for ``bastion review approve|reject``. The job is opened in
``review`` until then; a later cycle finds the decision and queues the job (approved) or closes it
(``rejected``: the definition is not changed, so the image published before stays current).

The job's ``review`` stage names the record (``review <id>: ...``); :func:`job_review` reads it back so
the job's build attaches the decided review as the ``upstream-review`` attestation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from sqlalchemy import update

from bastion.catalog import Definition, review_ref
from bastion.config import Settings
from bastion.factory._config import AutoApprove, FactoryConfig
from bastion.factory._db import proposals, transaction
from bastion.factory._jobs import JobRow, Jobs

if TYPE_CHECKING:
    from bastion.review import QueueEntry

__all__ = ["GUARDRAIL", "Gate", "Outcome", "PolicyGate", "ReviewGate", "job_review", "review_gate"]

#: The reviewer a policy's decision is recorded under.
GUARDRAIL = "guardrail"
_STAGE = re.compile(r"^review ([0-9a-f]{12}):")

#: What the gate did with a job: let it run (``go``), left it waiting (``wait``), closed it
#: (``closed``), or found it past the gate already (``known``: the same job as before).
Outcome = Literal["go", "wait", "closed", "known"]


class Gate(Protocol):
    """What the cycle asks of the gate a proposal passes."""

    @property
    def approved(self) -> bool: ...
    @property
    def line(self) -> str | None: ...
    def enter(self, jobs: Jobs, job_id: int, created: bool, diff: str) -> Outcome: ...


def _enter(jobs: Jobs, job_id: int, created: bool, diff: str) -> JobRow | None:
    """The job at the gate, its proposal recorded when it was just opened; None when it is past the
    gate already (the same recipe proposed before: nothing new)."""
    if created:
        jobs.stage(job_id, "propose", "done", diff or "(no change: rebuilt after its base)")
    row = jobs.get(job_id)
    return row if created or row.status == "review" else None


@dataclass(frozen=True)
class PolicyGate:
    """No upstream review: ``BASTION_FACTORY_AUTO_APPROVE`` decides (issue 20); a job it holds waits."""

    approved: bool
    policy: str
    line: str | None = None

    def enter(self, jobs: Jobs, job_id: int, created: bool, diff: str) -> Outcome:
        if not created or _enter(jobs, job_id, created, diff) is None:
            return "known"
        jobs.stage(job_id, "review", "not-reviewed", f"auto-approve policy {self.policy}: "
                   + ("approved" if self.approved else "waiting for review"))  # fmt: skip
        return "go" if self.approved else "wait"


@dataclass(frozen=True)
class ReviewGate:
    """The upstream review of one proposal, decided or pending."""

    entry: QueueEntry
    action: str  # the policy's action for the verdict: merge, wait, block

    @property
    def approved(self) -> bool:
        return self.entry.status == "approved"

    @property
    def line(self) -> str:
        e = self.entry
        head = f"review {e.id}: verdict {e.verdict} (score {e.score:g})"
        decision = e.record.get("decision")
        if e.status == "pending" or not isinstance(decision, dict):
            return f"{head}: waiting for review (bastion review approve {e.id} | reject {e.id} --reason TEXT)"
        reason = f": {decision['reason']}" if decision.get("reason") else ""
        return f"{head}: {e.status} by {decision['reviewer']}{reason}"

    def enter(self, jobs: Jobs, job_id: int, created: bool, diff: str) -> Outcome:
        row = _enter(jobs, job_id, created, diff)
        if row is None:
            return "known"
        if self.entry.status == "pending":
            if created:
                jobs.stage(job_id, "review", "waiting", self.line)
            return "wait"
        if self.approved:
            if not created:
                jobs.update(job_id, status="queued")
            _proposal_status(jobs, row.proposal_id, "approved")
            jobs.stage(job_id, "review", "approved", self.line)
            return "go"
        _proposal_status(jobs, row.proposal_id, "rejected")
        jobs.stage(job_id, "review", "rejected", self.line)
        jobs.finish(job_id, "rejected", self.line)
        return "closed"


def review_gate(
    definition: Definition,
    changes: Mapping[str, tuple[str, str]],
    settings: Settings,
    config: FactoryConfig,
    packages_only: bool,
) -> Gate:
    """The gate of a proposal of ``changes`` (variable -> (written, proposed)) to ``definition``. When a
    tracker with ``review:`` moved, the guardrail reviews its upstream change and the review is recorded
    (the same change: the same record); otherwise (package-only and unreviewed changes) the factory's
    auto-approve policy decides."""
    from bastion.review import ReviewQueue, review_versions

    for index, tracker in enumerate(definition.track):
        review = getattr(tracker, "review", None)
        if review is None or not any(name in changes for name in tracker.vars):
            continue
        written = {name: spec.value for name, spec in tracker.vars.items()}
        proposed = {name: changes[name][1] if name in changes else value for name, value in written.items()}
        old, new = review_ref(tracker, review, written), review_ref(tracker, review, proposed)
        repo = Path(review.repo)
        if not repo.is_absolute():
            repo = definition.path.parent / repo
        result = review_versions(old, new, repo, max_bytes=settings.max_review_size)
        queue = ReviewQueue(settings.home)
        subject = f"factory {definition.name}: track[{index}] {tracker.kind} {old} -> {new} ({repo})"
        entry = queue.submit(result, subject, hold=True)
        action = review.policy.action(entry.verdict)
        if entry.status == "pending" and action != "wait":
            entry = queue.decide(entry.id, approve=action == "merge", reviewer=GUARDRAIL,
                                 reason=f"verdict {entry.verdict}: the definition's review policy says {action}")  # fmt: skip
        return ReviewGate(entry, action)
    policy = config.auto_approve
    approved = policy is AutoApprove.all or (policy is AutoApprove.packages and packages_only)
    return PolicyGate(approved, str(policy))


def job_review(jobs: Jobs, job_id: int, settings: Settings) -> QueueEntry | None:
    """The review record job ``job_id`` passed its gate with (None: it had no upstream review)."""
    from bastion.review import ReviewQueue

    for stage, status, detail, _at in reversed(jobs.stages(job_id)):
        if stage == "review" and status == "approved" and (found := _STAGE.match(detail or "")):
            return ReviewQueue(settings.home).get(found.group(1))
    return None


def _proposal_status(jobs: Jobs, proposal_id: int | None, status: str) -> None:
    if proposal_id is not None:
        with transaction(jobs.engine) as connection:
            connection.execute(update(proposals).where(proposals.c.id == proposal_id).values(status=status))
