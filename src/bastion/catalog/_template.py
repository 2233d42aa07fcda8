"""``${NAME}`` in a definition: the values of tracker variables, substituted before validation.

Only the fields of :data:`~bastion.catalog._track.TEMPLATED_FIELDS` are templated (at the top level and
in each variant's overlay); a name no tracker declares is refused at its ``file:line`` with the field.
The substituted value then meets the field's own checks, so ``python3.11=${VERSION}`` with a value
that is no Debian version is refused like a pin written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bastion.catalog._model import field_path
from bastion.catalog._track import TEMPLATED_FIELDS
from bastion.errors import DefinitionError

__all__ = ["declared_values", "substitute"]

Loc = tuple[str | int, ...]

_REFERENCE = re.compile(r"\$\{([^}]*)\}")


def declared_values(data: Any) -> dict[str, str]:
    """The ``value`` of every variable the raw ``track:`` list declares (malformed entries are left to
    validation, which reports them)."""
    values: dict[str, str] = {}
    track = data.get("track") if isinstance(data, dict) else None
    for tracker in track if isinstance(track, list) else ():
        variables = tracker.get("vars") if isinstance(tracker, dict) else None
        for name, spec in variables.items() if isinstance(variables, dict) else ():
            if isinstance(spec, dict) and isinstance(spec.get("value"), str):
                values[str(name)] = spec["value"]
    return values


def _check_declared_once(data: Any, lines: Mapping[Loc, int], path: Path) -> None:
    """A variable set by two trackers is refused before any substitution, so that it is named."""
    seen: dict[str, int] = {}
    track = data.get("track") if isinstance(data, dict) else None
    for index, tracker in enumerate(track if isinstance(track, list) else ()):
        variables = tracker.get("vars") if isinstance(tracker, dict) else None
        for name in variables if isinstance(variables, dict) else ():
            if name in seen:
                loc: Loc = ("track", index, "vars", name)
                raise DefinitionError(
                    f"{field_path(loc)}: variable {name} is already set by track[{seen[name]}]",
                    where=f"{path}:{lines.get(loc, lines[()])}",
                )
            seen[name] = index


def _templated(loc: Loc) -> bool:
    if len(loc) >= 2 and loc[0] == "variants":
        loc = loc[2:]
    return any(
        len(pattern) == len(loc) and all(p in ("*", part) for p, part in zip(pattern, loc, strict=True))
        for pattern in TEMPLATED_FIELDS
    )


def substitute(
    data: Any,
    lines: Mapping[Loc, int],
    path: Path,
    overrides: Mapping[str, str] | None = None,
) -> Any:
    """``data`` with ``${NAME}`` replaced in the templated fields by the variable's ``value`` (or the
    value ``overrides`` gives: what a factory proposal would write)."""
    _check_declared_once(data, lines, path)
    values = {**declared_values(data), **(overrides or {})}

    def render(text: str, loc: Loc) -> str:
        def one(found: re.Match[str]) -> str:
            name = found.group(1)
            if name not in values:
                declared = ", ".join(sorted(values)) or "none: add a tracker under track:"
                line = lines.get(loc) or lines.get(loc[:-1]) or lines[()]
                raise DefinitionError(
                    f"{field_path(loc)}: unknown variable ${{{name}}} (declared: {declared})",
                    where=f"{path}:{line}",
                )
            return values[name]

        return _REFERENCE.sub(one, text)

    def walk(node: Any, loc: Loc) -> Any:
        if loc[:1] == ("track",):
            return node
        if isinstance(node, dict):
            return {key: walk(value, (*loc, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value, (*loc, index)) for index, value in enumerate(node)]
        if isinstance(node, str) and "${" in node and _templated(loc):
            return render(node, loc)
        return node

    return walk(data, ())
