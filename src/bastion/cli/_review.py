"""``bastion review diff``: the upstream diff guardrail over two versions of a project."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from bastion.cli._console import info, stdout, warning
from bastion.cli._output import OutputOpt, emit, to_stdout
from bastion.errors import FindingsFound

review_app = typer.Typer(
    name="review", help="Review upstream changes before they reach an image (the diff guardrail).",
    no_args_is_help=True,
)  # fmt: skip


class ReviewFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


@review_app.command("diff")
def diff_command(
    old: Annotated[str, typer.Argument(help="The old version: a ref of --repo, or a release tarball.")],
    new: Annotated[
        str,
        typer.Argument(
            help="The new version: a ref of --repo, or a release tarball "
            "(a tag as OLD and its tarball as NEW checks the release)."
        ),
    ],
    repo: Annotated[
        Path | None,
        typer.Option("--repo", help="A git repository (a clone or a bare mirror) holding the refs."),
    ] = None,
    output_format: Annotated[ReviewFormat, typer.Option("--format", help="How to print the review.")] = (
        ReviewFormat.table
    ),
    output: OutputOpt = None,
    submit: Annotated[
        str | None,
        typer.Option(
            "--submit",
            metavar="SUBJECT",
            help="Record the review in the review queue "
            "(BASTION_HOME/reviews) under SUBJECT, e.g. the proposal or project it is about.",
        ),
    ] = None,
) -> None:
    """Review the change from OLD to NEW and print each finding with its contribution to the score.

    Exit codes: 0 verdict pass, 1 verdict review or block, 2 unreadable input. Nothing from the reviewed
    code is run."""
    from bastion.config import Settings
    from bastion.review import Verdict, markdown, review_versions, to_json

    review = review_versions(old, new, repo, max_bytes=Settings.from_env().max_review_size)
    for note in review.notes:
        warning(note)
    if output_format is ReviewFormat.json:
        emit(json.dumps(to_json(review), indent=2).encode() + b"\n", output)
    elif output_format is ReviewFormat.markdown:
        emit(markdown(review).encode(), output, line_on_stdout=True)
    elif to_stdout(output):
        stdout.print(_table(review))
    else:
        emit(json.dumps(to_json(review), indent=2).encode() + b"\n", output)
    if submit is not None:
        from bastion.review import ReviewQueue

        entry = ReviewQueue(Settings.from_env().home).submit(review, submit)
        info(f"review {entry.id}: {entry.status} (bastion review show {entry.id})")
    summary = (f"{review.old} -> {review.new}: {review.verdict.value} (score {review.score}, "
               f"{len(review.findings)} finding(s), {review.files_changed} file(s) changed)")  # fmt: skip
    if review.verdict is not Verdict.PASS:
        raise FindingsFound(summary)
    info(summary)


def _table(review: object) -> Table:
    from bastion.review import Review

    assert isinstance(review, Review)
    table = Table("rule", "severity", "conf.", "x", "score", "where", "what", box=None, pad_edge=False,
                  title=Text(f"{review.old} → {review.new}: {review.verdict.value} (score {review.score})"))  # fmt: skip
    for f in review.findings:
        what = f"{f.text} — {f.detail}" if f.detail else f.text
        table.add_row(*map(Text, (f.rule.id, f.rule.severity.value, f.rule.confidence.value, f"{f.multiplier:g}",
                                  f"{f.contribution:g}", f"{f.path}:{f.line}", what)))  # fmt: skip
    return table


class ListFormat(StrEnum):
    table = "table"
    json = "json"


def _queue() -> Any:
    from bastion.config import Settings
    from bastion.review import ReviewQueue

    return ReviewQueue(Settings.from_env().home)


def _reviewer(given: str | None) -> str:
    if given:
        return given
    import getpass
    import os

    return os.environ.get("BASTION_REVIEWER") or getpass.getuser()


ReviewId = Annotated[str, typer.Argument(help="A review id, as `bastion review list` shows.")]
ReviewerOpt = Annotated[
    str | None,
    typer.Option("--reviewer", help="Who decides (default: BASTION_REVIEWER, else the login name)."),
]


@review_app.command("list")
def list_command(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also reviews that passed or were decided.")
    ] = False,
    output_format: Annotated[ListFormat, typer.Option("--format")] = ListFormat.table,
) -> None:
    """The reviews in the queue: by default those waiting for a decision."""
    entries = [e for e in _queue().entries() if show_all or e.status == "pending"]
    if output_format is ListFormat.json:
        rows = [{"id": e.id, "subject": e.subject, "status": e.status, "verdict": e.verdict, "score": e.score,
                 "created": e.created} for e in entries]  # fmt: skip
        stdout.print(json.dumps(rows, indent=2))
        return
    table = Table("id", "status", "verdict", "score", "created", "subject", box=None, pad_edge=False)
    for e in entries:
        table.add_row(*map(Text, (e.id, e.status, e.verdict, f"{e.score:g}", e.created, e.subject)))
    stdout.print(table)
    info(f"{len(entries)} review(s)")


@review_app.command("show")
def show_command(review_id: ReviewId) -> None:
    """One review: its record (subject, status, predicate with findings, decision) as JSON."""
    stdout.print(json.dumps(_queue().get(review_id).record, indent=2))


@review_app.command("approve")
def approve_command(
    review_id: ReviewId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why the change may go through.")] = None,
    reviewer: ReviewerOpt = None,
) -> None:
    """Let a pending review's change through; the reviewer and reason are recorded."""
    entry = _queue().decide(review_id, approve=True, reviewer=_reviewer(reviewer), reason=reason)
    info(f"review {entry.id}: approved by {entry.record['decision']['reviewer']}")


@review_app.command("reject")
def reject_command(
    review_id: ReviewId,
    reason: Annotated[str, typer.Option("--reason", help="Why the change is refused (required).")],
    reviewer: ReviewerOpt = None,
) -> None:
    """Refuse a pending review's change; the reviewer and reason are recorded."""
    entry = _queue().decide(review_id, approve=False, reviewer=_reviewer(reviewer), reason=reason)
    info(f"review {entry.id}: rejected by {entry.record['decision']['reviewer']}")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app)
