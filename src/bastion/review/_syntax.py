"""Syntax trees of the supported languages (tree-sitter, grammars from their wheels: nothing is
downloaded at run time) and the few questions the rules ask of them."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Language, Node, Parser

#: Files larger than this are analysed as text only (a generated file, not a hand-written change).
MAX_PARSE_BYTES = 2 * 1024 * 1024
#: A file whose unparsed regions cover more than this share is analysed as text only.
MAX_UNPARSED_SHARE = 0.25

_EXTENSIONS = {
    ".c": "c", ".h": "c",
    ".go": "go",
    ".py": "python",
    ".sh": "bash", ".bash": "bash",
}  # fmt: skip

_FUNCTION_TYPES = {
    "c": ("function_definition",),
    "go": ("function_declaration", "method_declaration", "func_literal"),
    "python": ("function_definition",),
    "bash": ("function_definition",),
}


def language_of(path: str, data: bytes) -> str | None:
    suffix = PurePosixPath(path).suffix
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    first = data[:80].split(b"\n", 1)[0]
    if first.startswith(b"#!"):
        if b"python" in first:
            return "python"
        if any(shell in first for shell in (b"/sh", b"bash", b"dash")):
            return "bash"
    return None


@functools.cache
def _parser(language: str) -> Parser:
    import tree_sitter_bash
    import tree_sitter_c
    import tree_sitter_go
    import tree_sitter_python

    grammars = {
        "c": tree_sitter_c,
        "go": tree_sitter_go,
        "python": tree_sitter_python,
        "bash": tree_sitter_bash,
    }
    return Parser(Language(grammars[language].language()))


@dataclass
class Source:
    path: str
    language: str
    data: bytes
    root: Node
    partial: bool = False
    """Some regions did not parse (tree-sitter's ERROR nodes); the rules see the rest."""
    _index: dict[str, list[Node]] | None = field(default=None, repr=False)

    def of(self, *types: str, within: Node | None = None) -> list[Node]:
        """The named nodes of these types, in source order, optionally only those inside ``within``: one
        walk of the tree serves every rule (walking it once per rule was most of a review's time)."""
        if self._index is None:
            index: dict[str, list[Node]] = {}
            for node in walk(self.root):
                index.setdefault(node.type, []).append(node)
            self._index = index
        found = [n for t in types for n in self._index.get(t, ())]
        if len(types) > 1:
            found.sort(key=lambda n: n.start_byte)
        if within is not None:
            start, end = within.start_byte, within.end_byte
            found = [n for n in found if start <= n.start_byte and n.end_byte <= end]
        return found

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def line(self, node: Node) -> int:
        return node.start_point[0] + 1


def parse(path: str, language: str, data: bytes) -> Source | None:
    """The tree of ``data``, or None when too much of it does not parse (the caller analyses it as text)."""
    if len(data) > MAX_PARSE_BYTES:
        return None
    tree = _parser(language).parse(data)
    if tree.root_node.has_error and _unparsed_share(tree.root_node) > MAX_UNPARSED_SHARE:
        return None
    return Source(path, language, data, tree.root_node, partial=tree.root_node.has_error)


def _unparsed_share(root: Node) -> float:
    """The share of the file's bytes inside ERROR nodes (tree-sitter recovers around what it cannot
    parse: C files full of macros parse but for a few regions)."""
    unparsed = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            unparsed += node.end_byte - node.start_byte
        elif node.has_error:
            stack.extend(node.children)
    return unparsed / max(1, root.end_byte - root.start_byte)


def walk(node: Node) -> Iterator[Node]:
    """Every named node under ``node``, in source order (iterative: deep trees do not recurse)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.named_children))


def function_of(src: Source, node: Node) -> str:
    """The name of the function enclosing ``node`` ('' at file level)."""
    kinds = _FUNCTION_TYPES[src.language]
    current: Node | None = node.parent
    while current is not None:
        if current.type in kinds:
            return function_name(src, current)
        current = current.parent
    return ""


def function_name(src: Source, fn: Node) -> str:
    name = fn.child_by_field_name("name")
    if name is None and src.language == "c":
        declarator = fn.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in ("identifier", "field_identifier"):
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    return src.text(name) if name is not None else "<anonymous>"


def functions(src: Source) -> Iterator[tuple[str, Node]]:
    for node in src.of(*_FUNCTION_TYPES[src.language]):
        yield function_name(src, node), node


def statements(block: Node) -> list[Node]:
    """The statements of a block (Go nests them in a ``statement_list``)."""
    named = [n for n in block.named_children if n.type != "comment"]
    if len(named) == 1 and named[0].type == "statement_list":
        return [n for n in named[0].named_children if n.type != "comment"]
    return named


def unwrap(node: Node) -> Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        child = node.named_children[0]
        node = child
    return node


def exits(src: Source, node: Node | None) -> bool:
    """Whether a branch leaves the function or loop: return, goto, raise, panic, exit, break, continue."""
    if node is None:
        return False
    kinds = {"return_statement", "goto_statement", "raise_statement", "break_statement", "continue_statement"}
    for n in walk(node):
        if n.type in kinds:
            return True
        if n.type in ("call_expression", "call"):
            callee = n.child_by_field_name("function")
            if callee is not None and src.text(callee) in ("panic", "exit", "abort", "os.Exit", "sys.exit", "log.Fatal",
                                                           "log.Fatalf", "err", "errx"):  # fmt: skip
                return True
    return False
