"""Error handling: inverted error checks, errors dropped on the failure path or never checked, and
exceptions swallowed."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

from bastion.review._model import Confidence, Hit, Rule, Severity
from bastion.review._rules._common import ERROR_NAMES, comparison, condition, hit, negated
from bastion.review._syntax import Source, functions, statements, walk

INVERTED = Rule(
    "EH001", "error-handling", Severity.HIGH, Confidence.HIGH,
    "The branch runs when the call succeeded and hands the success value back as the error (or the error "
    "back on success): failures pass as successes, the shape of an inverted `if (err == 0) return err;`.",
)  # fmt: skip
DROPPED = Rule(
    "EH002", "error-handling", Severity.HIGH, Confidence.MEDIUM,
    "A branch taken on error returns nil: the caller is told the operation succeeded.",
)  # fmt: skip
UNCHECKED = Rule(
    "EH003", "error-handling", Severity.MEDIUM, Confidence.HIGH,
    "An error is assigned and overwritten or dropped before anything reads it: its failure goes unnoticed.",
)  # fmt: skip
SWALLOWED = Rule(
    "EH004", "error-handling", Severity.MEDIUM, Confidence.HIGH,
    "Every exception is caught and discarded: a failed check or a broken invariant looks like success.",
)  # fmt: skip
RULES = (INVERTED, DROPPED, UNCHECKED, SWALLOWED)

_SUCCESS = ("0", "nil", "NULL")


def check(src: Source) -> Iterator[Hit]:
    if src.language in ("c", "go"):
        yield from _inverted(src)
    if src.language == "go":
        yield from _dropped(src)
        yield from _unchecked(src)
    if src.language == "python":
        yield from _swallowed(src)


def _tested_for_success(src: Source, cond: Node) -> str | None:
    """The error variable a condition tests for *success* (``err == 0``, ``err == nil``, ``!err``)."""
    cmp = comparison(src, cond)
    if cmp is not None:
        left, op, right = cmp
        if op == "==" and right in _SUCCESS and left in ERROR_NAMES:
            return left
        if op == "==" and left in _SUCCESS and right in ERROR_NAMES:
            return right
        return None
    operand = negated(src, cond)
    if operand is not None and operand.type == "identifier" and src.text(operand) in ERROR_NAMES:
        return src.text(operand)
    return None


def _returns(src: Source, body: Node | None) -> list[Node]:
    if body is None:
        return []
    return [n for n in walk(body) if n.type == "return_statement"]


def _returned_values(src: Source, ret: Node) -> list[str]:
    values = [n for n in ret.named_children if n.type != "comment"]
    if len(values) == 1 and values[0].type == "expression_list":
        values = list(values[0].named_children)
    return [src.text(v) for v in values]


def _inverted(src: Source) -> Iterator[Hit]:
    for node in src.of("if_statement"):
        cond = condition(node)
        name = _tested_for_success(src, cond) if cond is not None else None
        if name is None:
            continue
        for ret in _returns(src, node.child_by_field_name("consequence")):
            values = _returned_values(src, ret)
            if values and values[-1] == name:
                yield hit(INVERTED, src, node, f"if {src.text(cond)}: {src.text(ret)}")  # type: ignore[arg-type]


def _dropped(src: Source) -> Iterator[Hit]:
    for node in src.of("if_statement"):
        cond = condition(node)
        cmp = comparison(src, cond) if cond is not None else None
        if cmp is None or cmp[1] != "!=" or cmp[2] != "nil" or cmp[0] not in ERROR_NAMES:
            continue
        for ret in _returns(src, node.child_by_field_name("consequence")):
            values = _returned_values(src, ret)
            if values and values[-1] == "nil":
                yield hit(DROPPED, src, node, f"if {src.text(cond)}: {src.text(ret)}")  # type: ignore[arg-type]


def _unchecked(src: Source) -> Iterator[Hit]:
    for _, fn in functions(src):
        body = fn.child_by_field_name("body")
        if body is None:
            continue
        uses: list[tuple[int, bool, Node]] = []  # (position, is a write, node)
        for n in src.of("identifier", within=body):
            if src.text(n) == "err":
                uses.append((n.start_byte, _is_write(n), n))
        uses.sort(key=lambda u: u[0])
        for i, (_, write, node) in enumerate(uses):
            if write and (i + 1 == len(uses) or uses[i + 1][1]):
                stmt = (
                    node.parent.parent if node.parent is not None and node.parent.parent is not None else node
                )
                yield hit(UNCHECKED, src, stmt)


def _is_write(ident: Node) -> bool:
    parent = ident.parent
    if parent is None or parent.type != "expression_list":
        return False
    stmt = parent.parent
    return stmt is not None and stmt.type in ("short_var_declaration", "assignment_statement") and \
        stmt.child_by_field_name("left") == parent  # fmt: skip


def _swallowed(src: Source) -> Iterator[Hit]:
    for node in src.of("except_clause"):
        caught = [c for c in node.named_children if c.type != "block"]
        names = src.text(caught[0]).split(" as ")[0].strip() if caught else ""
        if names not in ("", "Exception", "BaseException"):
            continue
        block = next((c for c in node.named_children if c.type == "block"), None)
        if block is None:
            continue
        body = statements(block)
        if body and all(
            s.type in ("pass_statement", "continue_statement") or src.text(s) == "..." for s in body
        ):
            yield hit(SWALLOWED, src, node, f"except {names}: {src.text(body[0])}")
