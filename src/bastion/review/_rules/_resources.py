"""Resource handling: a resource acquired and not released on a return path, and a double release."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from bastion.review._model import Confidence, Hit, Rule, Severity
from bastion.review._rules._common import hit
from bastion.review._syntax import Source, functions

LEAK = Rule(
    "RS001", "resources", Severity.MEDIUM, Confidence.HIGH,
    "A resource (memory, file, descriptor) is acquired and a path leaves the function without releasing "
    "it: repeated, it exhausts the process (denial of service).",
)  # fmt: skip
DOUBLE = Rule(
    "RS002", "resources", Severity.HIGH, Confidence.HIGH,
    "The same resource is released twice with no new value in between: a double free or close corrupts "
    "the allocator or closes someone else's descriptor (CWE-415).",
)  # fmt: skip
RULES = (LEAK, DOUBLE)

_ACQUIRE_C = frozenset({"malloc", "calloc", "realloc", "strdup", "strndup", "fopen", "fdopen", "open", "socket",
                        "opendir", "popen", "tmpfile", "mmap"})  # fmt: skip
_RELEASE_C = frozenset({"free", "fclose", "close", "closedir", "pclose", "munmap"})
_ACQUIRE_GO = re.compile(r"^(os\.(Open|Create|OpenFile)|net\.Dial\w*|sql\.Open|http\.(Get|Post))$")


def check(src: Source) -> Iterator[Hit]:
    if src.language == "c":
        for _, fn in functions(src):
            yield from _c_leaks(src, fn)
            yield from _c_double(src, fn)
    elif src.language == "go":
        for _, fn in functions(src):
            yield from _go_leaks(src, fn)


def _callee(src: Source, call: Node) -> str:
    fn = call.child_by_field_name("function")
    return src.text(fn) if fn is not None else ""


def _acquisitions(src: Source, fn: Node) -> Iterator[tuple[str, Node]]:
    """(variable, statement) of each ``v = acquire(...)`` / ``T *v = acquire(...)``."""
    for n in src.of("call_expression", within=fn):
        if _callee(src, n) in _ACQUIRE_C:
            parent = n.parent
            if parent is not None and parent.type == "cast_expression":
                parent = parent.parent
            if parent is None:
                continue
            if parent.type == "assignment_expression":
                target = parent.child_by_field_name("left")
            elif parent.type == "init_declarator":
                target = parent.child_by_field_name("declarator")
                while target is not None and target.type == "pointer_declarator":
                    target = target.child_by_field_name("declarator")
            else:
                continue
            if target is not None and target.type == "identifier":
                yield src.text(target), n


def _releases(src: Source, fn: Node, var: str) -> list[Node]:
    return [n for n in src.of("call_expression", within=fn) if _callee(src, n) in _RELEASE_C
            and src.text(n.child_by_field_name("arguments") or n).strip("() ") == var]  # fmt: skip


def _guards_acquisition(src: Source, node: Node, var: str) -> bool:
    """Whether ``node`` sits in the branch that handles the acquisition failing (``if (!v)``)."""
    current = node.parent
    while current is not None and current.type != "function_definition":
        if current.type == "if_statement":
            cond = current.child_by_field_name("condition")
            text = src.text(cond).replace(" ", "") if cond is not None else ""
            if re.search(
                rf"(!{re.escape(var)}\b|\b{re.escape(var)}(==NULL|<0|==-1|==0)|NULL=={re.escape(var)})", text
            ):
                return True
        current = current.parent
    return False


def _same_path(release: Node, ret: Node) -> bool:
    """Whether a release before ``ret`` is on its way: its block also holds the return (a release in a
    branch that the return is not in does not count)."""
    block = release.parent
    while block is not None and block.type != "compound_statement":
        block = block.parent
    return block is not None and block.start_byte <= ret.start_byte < block.end_byte


def _c_leaks(src: Source, fn: Node) -> Iterator[Hit]:
    word = re.compile
    for var, acquired in _acquisitions(src, fn):
        mentions = word(rf"\b{re.escape(var)}\b")
        releases = _releases(src, fn, var)
        for ret in (n for n in src.of("return_statement", within=fn) if n.start_byte > acquired.end_byte):
            if mentions.search(src.text(ret)) or _guards_acquisition(src, ret, var):
                continue
            if any(r.start_byte < ret.start_byte and _same_path(r, ret) for r in releases):
                continue
            between = src.data[acquired.end_byte : ret.start_byte].decode("utf-8", "replace")
            if re.search(rf"=\s*{re.escape(var)}\s*;", between):  # ownership handed on
                continue
            yield hit(
                LEAK, src, ret, f"{var}: {src.text(ret)}", detail=f"{var} from {_callee(src, acquired)}"
            )


def _c_double(src: Source, fn: Node) -> Iterator[Hit]:
    calls = [n for n in src.of("call_expression", within=fn) if _callee(src, n) in _RELEASE_C]
    for i, first in enumerate(calls):
        args = first.child_by_field_name("arguments")
        var = src.text(args).strip("() ") if args is not None else ""
        block = first.parent.parent if first.parent is not None else None
        for second in calls[i + 1 :]:
            args2 = second.child_by_field_name("arguments")
            if args2 is None or src.text(args2).strip("() ") != var or block is None:
                continue
            if not (block.start_byte <= second.start_byte < block.end_byte):
                continue
            between = src.data[first.end_byte : second.start_byte].decode("utf-8", "replace")
            if re.search(rf"\b{re.escape(var)}\s*=[^=]", between) or re.search(
                r"\b(return|goto|break)\b", between
            ):
                continue
            yield hit(DOUBLE, src, second, f"{src.text(first)} ... {src.text(second)}")


def _go_leaks(src: Source, fn: Node) -> Iterator[Hit]:
    body = src.text(fn)
    for n in src.of("short_var_declaration", within=fn):
        right = n.child_by_field_name("right")
        left = n.child_by_field_name("left")
        if right is None or left is None or not right.named_children or not left.named_children:
            continue
        call = right.named_children[0]
        if call.type != "call_expression" or not _ACQUIRE_GO.match(_callee(src, call)):
            continue
        var = src.text(left.named_children[0])
        if var == "_":
            continue
        closed = re.search(rf"\b{re.escape(var)}(\.Body)?\.Close\(\)", body)
        returned = re.search(rf"return\s+(?:[^\n(]*,\s*)?{re.escape(var)}\s*(?:,|$)", body, re.MULTILINE)
        if not closed and not returned:
            yield hit(LEAK, src, n, detail=f"{var} from {_callee(src, call)} is never closed")
