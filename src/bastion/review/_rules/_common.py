"""What every rule module shares: the hit constructor and the shapes of conditions."""

from __future__ import annotations

from tree_sitter import Node

from bastion.review._model import Hit, Rule
from bastion.review._syntax import Source, function_of, unwrap

#: Names that hold an error or status code by convention (C and Go).
ERROR_NAMES = frozenset({"err", "error", "ret", "rc", "rv", "res", "status", "result", "r", "e"})


def hit(rule: Rule, src: Source, node: Node, text: str | None = None, detail: str = "") -> Hit:
    return Hit(rule, src.path, src.line(node), function_of(src, node),
               text if text is not None else src.text(node).split("\n", 1)[0], detail)  # fmt: skip


def condition(node: Node) -> Node | None:
    """The condition of an ``if`` statement, parentheses taken off."""
    cond = node.child_by_field_name("condition")
    return unwrap(cond) if cond is not None else None


def comparison(src: Source, node: Node) -> tuple[str, str, str] | None:
    """``(left, operator, right)`` of a binary comparison, else None."""
    node = unwrap(node)
    if node.type not in ("binary_expression", "comparison_operator"):
        return None
    if node.type == "comparison_operator":  # Python: a < b (chains are not compared)
        if node.named_child_count != 2:
            return None
        left, right = node.named_children
        op = src.text(node)[left.end_byte - node.start_byte : right.start_byte - node.start_byte].strip()
    else:
        left_field = node.child_by_field_name("left")
        right_field = node.child_by_field_name("right")
        operator = node.child_by_field_name("operator")
        if left_field is None or right_field is None or operator is None:
            return None
        left, right, op = left_field, right_field, src.text(operator)
    if op not in ("<", "<=", ">", ">=", "==", "!="):
        return None
    return src.text(unwrap(left)), op, src.text(unwrap(right))


def negated(src: Source, node: Node) -> Node | None:
    """``x`` of ``!x`` / ``not x``, else None."""
    node = unwrap(node)
    if node.type in ("unary_expression", "not_operator"):
        operand = node.child_by_field_name("argument") or node.child_by_field_name("operand")
        if operand is not None and src.text(node).lstrip().startswith(("!", "not")):
            return unwrap(operand)
    return None
