"""The rule catalogue: each check registers itself, with its description, under its rule name."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bastion.compliance._model import Area, Outcome, ParamValue, Result, Rule, RuleConfig, Severity
from bastion.compliance._rules._context import Context

Check = Callable[[Context, RuleConfig], Outcome]

#: rule name → rule, in registration order (the order of the modules, then of the rules in them).
RULES: dict[str, Rule] = {}

#: At most this many evidence items are kept per rule; the message says how many there were.
MAX_EVIDENCE = 100


def rule(
    name: str,
    *,
    area: Area,
    title: str,
    severity: Severity,
    description: str,
    rationale: str,
    cis: tuple[str, ...] = (),
    cci: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    params: Mapping[str, ParamValue] | None = None,
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        if name in RULES:
            raise ValueError(f"rule {name!r} is registered twice")
        RULES[name] = Rule(
            name=name,
            area=area,
            title=title,
            severity=severity,
            description=description,
            rationale=rationale,
            check=check,
            cis=cis,
            cci=cci,
            allow=allow,
            params=dict(params or {}),
        )
        return check

    return register


def passed(message: str) -> Outcome:
    return Outcome(Result.PASS, message)


def not_applicable(message: str) -> Outcome:
    return Outcome(Result.NOTAPPLICABLE, message)


def verdict(findings: list[str], *, ok: str, bad: str) -> Outcome:
    """``fail`` with the findings as evidence (``bad`` is formatted with ``{n}``), else ``pass``."""
    if not findings:
        return Outcome(Result.PASS, ok)
    kept = tuple(findings[:MAX_EVIDENCE])
    more = f" (first {MAX_EVIDENCE} listed)" if len(findings) > MAX_EVIDENCE else ""
    return Outcome(Result.FAIL, bad.format(n=len(findings)) + more, kept)
