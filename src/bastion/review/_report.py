"""A review as data: the JSON document, the signed predicate, and Markdown for a merge request."""

from __future__ import annotations

from bastion.identifiers import REVIEW_PREDICATE_URI
from bastion.review._model import BLOCK_AT, NEW_CONTRIBUTOR_MULTIPLIER, REVIEW_AT, Review

#: The in-toto predicate type of :func:`predicate` (docs/identifiers.md).
PREDICATE_TYPE = REVIEW_PREDICATE_URI


def to_json(review: Review) -> dict[str, object]:
    return {
        "old": review.old,
        "new": review.new,
        "verdict": review.verdict.value,
        "score": review.score,
        "thresholds": {
            "review": REVIEW_AT,
            "block": BLOCK_AT,
            "new-contributor-multiplier": NEW_CONTRIBUTOR_MULTIPLIER,
        },
        "files-changed": review.files_changed,
        "lines-changed": review.lines_changed,
        "findings": [f.to_json() for f in review.findings],
        "notes": list(review.notes),
    }


def predicate(review: Review, *, reviewer: dict[str, str] | None = None) -> dict[str, object]:
    """The in-toto predicate (type :data:`PREDICATE_TYPE`): versions compared,
    rules run with their versions, findings, verdict and, once a person decided, the reviewer."""
    return {
        "versions": {"old": review.old, "new": review.new},
        "rules": [{"id": r.id, "family": r.family, "version": r.version} for r in review.rules],
        "findings": [
            {k: v for k, v in f.to_json().items() if k not in ("hunk", "why")} for f in review.findings
        ],
        "score": review.score,
        "verdict": review.verdict.value,
        "reviewer": reviewer,
    }


def markdown(review: Review) -> str:
    lines = [
        f"## Upstream diff review: {review.old} → {review.new}",
        "",
        f"**Verdict: {review.verdict.value}** (score {review.score}; review at {REVIEW_AT}, block at {BLOCK_AT}); "
        f"{review.files_changed} file(s), {review.lines_changed} line(s) changed.",
        "",
    ]
    if review.findings:
        lines += [
            "| rule | severity | confidence | x | contribution | where | what |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in review.findings:
            what = f"{f.text} — {f.detail}" if f.detail else f.text
            lines.append(f"| {f.rule.id} | {f.rule.severity.value} | {f.rule.confidence.value} | {f.multiplier} | "
                         f"{f.contribution} | `{f.path}:{f.line}` | {_cell(what)} |")  # fmt: skip
        lines.append("")
        for f in review.findings:
            lines += [f"### {f.rule.id} `{f.path}:{f.line}`", "", f.rule.why, ""]
            if f.hunk:
                lines += ["```diff", f.hunk, "```", ""]
    if review.notes:
        lines += ["Notes:", "", *(f"- {_cell(n)}" for n in review.notes), ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
