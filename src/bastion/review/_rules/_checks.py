"""Removed or weakened checks: a guard (an ``if`` that rejects: returns, jumps, raises) that the old
version had and the new one lost, or whose comparison the new version loosened."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from bastion.review._model import Confidence, Hit, Rule, Severity
from bastion.review._rules._common import condition
from bastion.review._syntax import Source, exits, function_of

REMOVED = Rule(
    "WC001", "checks", Severity.HIGH, Confidence.MEDIUM,
    "A guard that rejected bad input (a bounds, length or signature check) is gone from a function that "
    "still exists: input it refused now goes through.",
)  # fmt: skip
LOOSENED = Rule(
    "WC002", "checks", Severity.HIGH, Confidence.HIGH,
    "A guard's comparison was loosened (strict to non-strict, or its limit widened): an off-by-one or "
    "a larger input now passes the check.",
)  # fmt: skip
RULES = (REMOVED, LOOSENED)

_TOKEN = re.compile(r"0[xX][0-9a-fA-F]+|\d+|[A-Za-z_][A-Za-z_0-9]*|<=|>=|==|!=|->|&&|\|\||\S")
_CHECKISH = re.compile(r"(<|>|==|!=|len|size|sizeof|length|count|verify|check|valid|sig|cmp|hash|digest|auth)",
                       re.IGNORECASE)  # fmt: skip
# For a guard that rejects when true, the operator swaps that make it true less often.
_LOOSER_REJECT = {(">=", ">"), ("<=", "<")}
_LOOSER_ACCEPT = {(">", ">="), ("<", "<=")}


@dataclass(frozen=True)
class Guard:
    function: str
    cond: str
    line: int
    rejects: bool

    @property
    def tokens(self) -> list[str]:
        return _TOKEN.findall(self.cond)


def guards(src: Source) -> list[Guard]:
    found = []
    for node in src.of("if_statement"):
        cond = condition(node)
        if cond is None:
            continue
        text = " ".join(src.text(cond).split())
        if not _CHECKISH.search(text):
            continue
        rejects = exits(src, node.child_by_field_name("consequence"))
        found.append(Guard(function_of(src, node), text, src.line(node), rejects))
    return found


def compare(old: Source, new: Source) -> Iterator[Hit]:
    old_guards, new_guards = guards(old), guards(new)
    new_functions = {g.function for g in new_guards} | _function_names(new)
    by_fn_old: dict[str, list[Guard]] = {}
    by_fn_new: dict[str, list[Guard]] = {}
    for g in old_guards:
        by_fn_old.setdefault(g.function, []).append(g)
    for g in new_guards:
        by_fn_new.setdefault(g.function, []).append(g)
    for fn, olds in by_fn_old.items():
        if fn not in new_functions:
            continue  # the function itself went away: a removal of code, not of a check
        news = by_fn_new.get(fn, [])
        gone = Counter(g.cond for g in olds) - Counter(g.cond for g in news)
        came = Counter(g.cond for g in news) - Counter(g.cond for g in olds)
        added = [g for g in news if came[g.cond] > 0]
        removed = [g for g in olds if gone[g.cond] > 0]
        paired: set[str] = set()
        for before in removed:
            for after in added:
                how = _loosened(before, after)
                if how and after.cond not in paired:
                    paired.add(after.cond)
                    paired.add(before.cond)
                    yield Hit(LOOSENED, new.path, after.line, fn, f"{before.cond} -> {after.cond}", how)
                    break
        excess = len(olds) - len(news)
        for before in removed:
            if excess <= 0:
                break
            if before.cond in paired or not before.rejects:
                continue
            excess -= 1
            line = next((g.line for g in news), _function_line(new, fn))
            yield Hit(
                REMOVED, new.path, line, fn, f"if ({before.cond})", f"line {before.line} of the old version"
            )


def _function_names(src: Source) -> set[str]:
    from bastion.review._syntax import functions

    return {name for name, _ in functions(src)}


def _function_line(src: Source, name: str) -> int:
    from bastion.review._syntax import functions

    return next((src.line(fn) for n, fn in functions(src) if n == name), 1)


def _number(token: str) -> int | None:
    try:
        return int(token, 0)
    except ValueError:
        return None


def _loosened(before: Guard, after: Guard) -> str:
    a, b = before.tokens, after.tokens
    if len(a) != len(b) or before.rejects != after.rejects:
        return ""
    diffs = [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diffs) != 1:
        return ""
    i, x, y = diffs[0]
    looser = _LOOSER_REJECT if before.rejects else _LOOSER_ACCEPT
    if (x, y) in looser:
        return f"'{x}' became '{y}'"
    old_n, new_n = _number(x), _number(y)
    if old_n is None or new_n is None or i == 0:
        return ""
    op = a[i - 1]
    # The limit on the right of the comparison: for a rejecting `n > LIMIT` a larger limit lets more
    # through; for an accepting `n < LIMIT` too. Smaller limits loosen `<` rejections.
    widens = {">": new_n > old_n, ">=": new_n > old_n, "<": new_n < old_n, "<=": new_n < old_n}
    if op in widens and (widens[op] if before.rejects else not widens[op]):
        return f"limit {x} became {y}"
    return ""
