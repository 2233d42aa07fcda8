"""``bastion review diff``: the upstream diff guardrail over two versions of a project."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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


def register(app: typer.Typer) -> None:
    app.add_typer(review_app)
