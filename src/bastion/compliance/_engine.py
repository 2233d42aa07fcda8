"""Evaluating a profile on an image, and scoring the results the way XCCDF 1.2's default model does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bastion import _clock as clock
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
from bastion.errors import BastionError, ExitCode
from bastion.image import ImageTarget

# Results the default model leaves out of the score (XCCDF 1.2 section 7.3.2.1, Score.Default.Rule:
# only selected rules count, and of those not the notapplicable, notchecked and informational ones).
_UNSCORED = frozenset({Result.NOTAPPLICABLE, Result.NOTCHECKED, Result.INFORMATIONAL, Result.NOTSELECTED})


class ComplianceFailed(BastionError):
    """A rule of the profile failed and the user asked for a failing exit code (exit code 1)."""

    exit_code = ExitCode.FINDINGS


def compliance(
    target: ImageTarget, profile: Profile | str | Path = "default", *, time: datetime | None = None
) -> ComplianceResult:
    """Evaluate ``profile`` (a :class:`Profile`, a built-in name or a profile file) on ``target``.

    The reports record when the evaluation started and ended (XCCDF 1.2 section 6.6.2, TestResult
    ``start-time`` and ``end-time``): by default the clock's time before and after the checks, so a
    scan states when it ran. A caller that needs reproducible reports (the build, which evaluates at
    the image's creation time) gives ``time``, and both are that time.

    A check that raises is reported with the result ``error`` and the exception as its message; the
    other rules still run (XCCDF 1.2 section 6.6.4.2: "error: the checking engine could not complete
    the evaluation").
    """
    chosen = profile if isinstance(profile, Profile) else load_profile(profile)
    started = time or clock.now()
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
    ended = time or clock.now()
    return ComplianceResult(
        chosen,
        info,
        tuple(results),
        default_score(results),
        started.astimezone(UTC),
        end_time=ended.astimezone(UTC),
    )


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
