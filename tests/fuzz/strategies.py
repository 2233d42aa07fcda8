"""Mutations of valid documents, for the fuzzing harness: a hostile document is usually a valid one with
one value of the wrong type, a missing key, a huge or deep value, or a few flipped bytes, so these
strategies start from a real seed and change it, which reaches far deeper than random bytes do."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

# Any JSON value, including the shapes that broke parsers before: numbers where text is expected,
# objects where a list is expected, text with newlines and non-ASCII digits.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        ["", "\n", "1.0\n", "٣", "0:1.2-3~rc1", "../../etc/passwd", "sha256:" + "0" * 64, "[/x]"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any, *, delete: bool) -> Any:
    if not path:
        return new
    document = copy.deepcopy(document)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


@st.composite
def mutated(draw: st.DrawFn, seed: Any, *, rounds: int = 3) -> Any:
    """``seed`` with up to ``rounds`` values replaced by any JSON value, or keys deleted."""
    document = seed
    for _ in range(draw(st.integers(min_value=1, max_value=rounds))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        document = _replace(document, path, draw(json_values), delete=draw(st.booleans()))
    return document


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bytes flipped, a slice cut out or duplicated, or truncated."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not data:
            break
        where = draw(st.integers(min_value=0, max_value=len(data) - 1))
        match draw(st.sampled_from(["flip", "cut", "dup", "truncate", "byte"])):
            case "flip":
                data[where] ^= 1 << draw(st.integers(min_value=0, max_value=7))
            case "byte":
                data[where] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, ord("9"), ord("/")]))
            case "cut":
                del data[where : where + draw(st.integers(min_value=1, max_value=64))]
            case "dup":
                data[where:where] = data[where : where + draw(st.integers(min_value=1, max_value=64))]
            case "truncate":
                del data[where:]
    return bytes(data)


def deep(levels: int, *, opener: str = "[", closer: str = "]") -> str:
    """A document nested ``levels`` deep."""
    return opener * levels + closer * levels


@st.composite
def json_text(draw: st.DrawFn, seed: Any) -> bytes:
    """A mutated document as JSON text, sometimes also mutated as bytes or nested far too deep."""
    choice = draw(st.sampled_from(["value", "value", "value", "bytes", "deep"]))
    if choice == "deep":
        return deep(draw(st.integers(min_value=100, max_value=20_000))).encode()
    text = json.dumps(draw(mutated(seed)), allow_nan=False).encode()
    return draw(mutated_bytes(text)) if choice == "bytes" else text
