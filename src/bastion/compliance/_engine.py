"""Evaluating a profile on an image, and scoring the results the way XCCDF 1.2's default model does."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bastion.compliance._model import (
    Area,
    ComplianceResult,
    Outcome,
    Profile,
    Result,
    RuleResult,
    TargetInfo,
)
from bastion.compliance._profile import load_profile
from bastion.compliance._rules import Context
from bastion.errors import BastionError, ExitCode, InputError
from bastion.image import ImageTarget

# Results the default model leaves out of the score (XCCDF 1.2 section 7.3.2.1, Score.Default.Rule).
_UNSCORED = frozenset({Result.NOTAPPLICABLE, Result.NOTCHECKED, Result.INFORMATIONAL})


class ComplianceFailed(BastionError):
    """A rule of the profile failed and the user asked for a failing exit code (exit code 1)."""

    exit_code = ExitCode.FINDINGS


def compliance(
    target: ImageTarget, profile: Profile | str | Path = "default", *, time: datetime | None = None
) -> ComplianceResult:
    """Evaluate ``profile`` (a :class:`Profile`, a built-in name or a profile file) on ``target``.

    ``time`` is the evaluation time the reports record. By default it is ``SOURCE_DATE_EPOCH`` when
    set, else the image's ``created`` date, so the result (and its XCCDF, HTML and JSON) is a function
    of the image and the profile alone: the same input gives the same bytes.

    A check that raises is reported with the result ``error`` and the exception as its message; the
    other rules still run (XCCDF 1.2 section 6.6.4.2: "error: the checking engine could not complete
    the evaluation").
    """
    chosen = profile if isinstance(profile, Profile) else load_profile(profile)
    context = Context(target)
    results = []
    for config in chosen.rules:
        try:
            outcome = config.rule.check(context, config)
        except Exception as exc:  # reported as the XCCDF result "error", never swallowed
            outcome = Outcome(Result.ERROR, f"the check failed: {type(exc).__name__}: {exc}")
        results.append(RuleResult(config, outcome.result, outcome.message, outcome.evidence))
    info = TargetInfo(
        name=target.name,
        manifest_digest=target.manifest_digest,
        index_digest=target.index_digest,
        platform=target.platform,
        variant=context.variant,
        runtime=context.is_runtime,
    )
    when = time or _default_time(target)
    return ComplianceResult(chosen, info, tuple(results), default_score(results), when.astimezone(UTC))


def require_passed(result: ComplianceResult) -> None:
    """Raise :class:`ComplianceFailed` when a rule failed or could not be evaluated."""
    failed = result.failed
    if failed:
        names = ", ".join(r.rule.name for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        raise ComplianceFailed(
            f"{len(failed)} rule(s) of profile {result.profile.name} {result.profile.version} failed: {names}",
            where=result.target.name,
        )


def default_score(results: Sequence[RuleResult]) -> float:
    """The ``urn:xccdf:scoring:default`` score (XCCDF 1.2 section 7.3.2.1) of a Benchmark whose
    Groups are the rule areas, every weight 1: each Rule scores 100 (pass) or 0 (fail, error,
    unknown) and counts unless its result is unscored; a Group's score is the mean of its counted
    Rules; the Benchmark's the mean of its counted Groups. With nothing counted the score is 0."""
    group_scores = []
    for area in Area:
        scored = [r for r in results if r.rule.area is area and r.result not in _UNSCORED]
        if scored:
            group_scores.append(sum(100.0 for r in scored if r.result is Result.PASS) / len(scored))
    if not group_scores:
        return 0.0
    return round(sum(group_scores) / len(group_scores), 2)


def _default_time(target: ImageTarget) -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except ValueError as exc:
            raise InputError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds") from exc
    created = target.config.get("created")
    if isinstance(created, str):
        # RFC 3339 allows nanoseconds (Docker writes them); datetime keeps microseconds.
        created = re.sub(r"(\.\d{6})\d+", r"\1", created)
        try:
            parsed = datetime.fromisoformat(created)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(0, UTC)
