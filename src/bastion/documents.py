"""Bounded parsing of JSON documents that come from outside.

Every JSON document Bastion reads from a user, an image, a registry or a feed goes through
:func:`load_json`, so that one place decides what a hostile document may cost: its size, how deep it
nests and how many values it holds. Python's own decoder is used (it is correct and fast); it raises
``RecursionError`` on deep nesting, and what it returns is walked once, without recursion, to check
the depth and count limits before any caller looks at it. Each refusal is an
:class:`~bastion.errors.InputError` naming the document, never an internal error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bastion.errors import InputError

if TYPE_CHECKING:
    import yaml

__all__ = ["MAX_DEPTH", "MAX_VALUES", "MAX_YAML_NODES", "check_shape", "check_yaml", "load_json"]

#: How deeply arrays and objects may nest. Real documents (SPDX, CycloneDX, OSV, OCI, in-toto) stay
#: under 20; the limit leaves room for embedded documents.
MAX_DEPTH = 64
#: How many values (scalars, arrays and objects) one document may hold: a 200-package SBOM holds
#: ~200,000; a whole Debian tracker dump ~10 million.
MAX_VALUES = 50_000_000
#: How many nodes a YAML document written by a person (a definition, a policy) may expand to, each
#: alias counted as the nodes it names.
MAX_YAML_NODES = 100_000


def load_json(
    data: bytes | str,
    *,
    where: str,
    max_bytes: int | None = None,
    max_depth: int = MAX_DEPTH,
    max_values: int = MAX_VALUES,
) -> Any:
    """The JSON value in ``data`` (RFC 8259), or an :class:`InputError` naming ``where``.

    ``max_bytes`` bounds the encoded size before anything is decoded.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(
            f"the document is {len(data):,} bytes, more than the {max_bytes:,} accepted", where=where
        )
    try:
        value = json.loads(data)
    except RecursionError:
        raise InputError(f"the JSON nests deeper than {max_depth} levels", where=where) from None
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text: {error.reason} at byte {error.start}", where=where) from None
    except ValueError as error:  # json.JSONDecodeError, and int() refusing a 5,000-digit number
        raise InputError(f"not valid JSON: {error}", where=where) from None
    if not _within_bounds(data, max_depth, max_values):
        check_shape(value, where=where, max_depth=max_depth, max_values=max_values)
    return value


def _within_bounds(data: bytes | str, max_depth: int, max_values: int) -> bool:
    """Whether the text alone proves that its value is within both limits, so the walk can be
    skipped (it was a quarter of the time a feed import spends on each OSV record). RFC 8259 §2-§7:
    every value takes at least one character of the text, so a text of n characters holds at most n
    values; every array or object opens with ``[`` or ``{``, so a value nests no deeper than the
    number of those characters (ones inside strings only add to the count)."""
    if len(data) > max_values:
        return False
    if isinstance(data, str):
        return data.count("[") + data.count("{") < max_depth
    return data.count(b"[") + data.count(b"{") < max_depth


def check_shape(value: Any, *, where: str, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> None:
    """Refuse ``value`` (a decoded JSON or YAML document) if it nests deeper than ``max_depth`` or
    holds more than ``max_values`` values; walked with an explicit stack, so never a RecursionError.
    Only containers are visited (scalars are counted by their container's length): this walk runs on
    every document a feed import reads."""
    seen = 1
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if not children:
            continue
        seen += len(children)
        if seen > max_values:
            raise InputError(f"the document holds more than {max_values:,} values", where=where)
        if depth >= max_depth:
            raise InputError(f"the document nests deeper than {max_depth} levels", where=where)
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def check_yaml(
    text: str,
    *,
    where: str,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_YAML_NODES,
    loader: type[yaml.SafeLoader | yaml.CSafeLoader] | None = None,
) -> None:
    """Refuse the YAML ``text`` if it nests deeper than ``max_depth`` or expands to more than
    ``max_nodes`` nodes, before anything composes it: PyYAML's composer and constructor recurse once
    per level (5,000 ``[`` are a RecursionError), and an alias is a reference that constructing
    copies out ("billion laughs": a few hundred bytes expanding to billions of nodes). Only the event
    stream is read, and PyYAML's parser is iterative. Each alias counts as the nodes its anchor named
    (YAML 1.2 §3.2.2.2); ``where`` gains the line of the refused node. Syntax errors are left to the
    caller's own parse (``yaml.YAMLError``). ``loader`` chooses the parser (libyaml's
    ``yaml.CSafeLoader`` is iterative too); ``SafeLoader``'s by default."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> the nodes it names, aliases expanded
    open_: list[tuple[str | None, list[int]]] = []  # the collections being read: anchor, node count
    total = [0]

    def add(count: int, event: yaml.Event) -> None:
        counter = open_[-1][1] if open_ else total
        counter[0] += count
        if counter[0] > max_nodes:  # a collection holds no fewer nodes than any collection in it
            raise InputError(
                f"the YAML expands to more than {max_nodes:,} nodes (aliases?)",
                where=_at(where, event),
            )

    for event in yaml.parse(text, Loader=loader or yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) >= max_depth:
                raise InputError(
                    f"the YAML nests deeper than {max_depth} levels",
                    where=_at(where, event),
                )
            open_.append((event.anchor, [1]))
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, (count,) = open_.pop()
            if anchor is not None:
                sizes[anchor] = count
            add(count, event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                sizes[event.anchor] = 1
            add(1, event)
        elif isinstance(event, yaml.AliasEvent):
            add(sizes.get(event.anchor or "", 1), event)


def _at(where: str, event: Any) -> str:
    """``where`` with the line of ``event`` (a ``yaml.Event``), when the parser recorded one."""
    mark = event.start_mark
    return f"{where}:{mark.line + 1}" if mark is not None else where
