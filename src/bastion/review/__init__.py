"""The upstream diff guardrail (issue 22): review the change between two versions of an upstream project
— git refs, release tarballs, or a tag and its tarball — with language-aware rules, keep what the change
introduced, and score it into a verdict (``docs/guardrail.md``).

Nothing from the reviewed code is ever run: git is driven through plumbing with hooks, fsmonitor and
filters off, tarballs are read in memory, and the sources are only parsed.
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

# Loaded on first use (PEP 562, bastion._lazy): a build looks up this package's proof producer on
# every run, and must not pay for tree-sitter and the rules.
if TYPE_CHECKING:
    from bastion.review._engine import review_diff
    from bastion.review._model import (
        BLOCK_AT,
        FAMILIES,
        REVIEW_AT,
        Confidence,
        Finding,
        Review,
        Rule,
        Severity,
        Verdict,
    )
    from bastion.review._open import review_versions
    from bastion.review._proof import REVIEW_PRODUCER, UPSTREAM_REVIEW
    from bastion.review._queue import QueueEntry, ReviewQueue
    from bastion.review._report import PREDICATE_TYPE, markdown, predicate, to_json
    from bastion.review._rules import RULES
    from bastion.review._snapshot import Git, Snapshot, tarball

__getattr__ = lazy_attributes(__name__)

__all__ = [
    "BLOCK_AT",
    "FAMILIES",
    "PREDICATE_TYPE",
    "REVIEW_AT",
    "REVIEW_PRODUCER",
    "RULES",
    "UPSTREAM_REVIEW",
    "Confidence",
    "Finding",
    "Git",
    "QueueEntry",
    "Review",
    "ReviewQueue",
    "Rule",
    "Severity",
    "Snapshot",
    "Verdict",
    "markdown",
    "predicate",
    "review_diff",
    "review_versions",
    "tarball",
    "to_json",
]
