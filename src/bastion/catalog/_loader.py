"""Loading a definition file, with errors that name the file, the line and the field.

PyYAML composes the file into nodes, which keep their position; we turn the nodes into plain data
ourselves, recording the line of every mapping key and sequence item under its field path, and refusing
what ``SafeLoader`` would silently accept (a key given twice, merge keys, unknown tags). Pydantic then
validates the data, and each error's location is looked up in the recorded lines.

The file is read by libyaml's parser (PyYAML's C binding, ``yaml.CSafeLoader``) when the Python build
has it: the same YAML 1.1 events and node marks as PyYAML's pure-Python parser at a twentieth of the
cost, which is what lets ``factory plan`` read a catalog of 1,000 definitions. A file libyaml refuses
is read again by the pure-Python parser, whose syntax messages are the ones users and tests see (and
which decides, should the two disagree).
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bastion.catalog._model import Definition, Overlay, OverlayError, field_path, merge_variant
from bastion.catalog._package import PackageDefinition, Patch
from bastion.catalog._parts import (
    UNION_TAGS,
    AbsentTest,
    Accounts,
    AccountsOverlay,
    CommandTest,
    Compliance,
    ComplianceOverlay,
    Contents,
    ContentsOverlay,
    DirectoryEntry,
    FileEntry,
    FileTest,
    Group,
    HttpTest,
    Repository,
    SymlinkEntry,
    User,
    Waiver,
)
from bastion.catalog._template import substitute
from bastion.catalog._track import (
    TRACKER_TAGS,
    Dates,
    DebianPackageTracker,
    GithubReleaseTracker,
    GithubTagTracker,
    IncrementTracker,
    JsonUrlTracker,
    OciImageTracker,
    UrlTracker,
    VarSpec,
)
from bastion.catalog._types import ITEM_ERROR
from bastion.catalog._vex import VexStatement
from bastion.documents import check_yaml
from bastion.errors import DefinitionError, InputError

__all__ = ["load_definition", "load_package_definition"]

Loc = tuple[str | int, ...]
Lines = dict[Loc, int]

# Bounds on what a definition can make us build; a few aliases can otherwise expand to billions of
# nodes ("billion laughs"), and deep nesting exhausts the stack.
_MAX_NODES = 100_000
_MAX_DEPTH = 64
# Definitions are written by hand; the largest in the catalogs we know is a few kilobytes.
MAX_DEFINITION_BYTES = 1 << 20

# What both loaders have: SafeLoader's constructor and resolver; the parser is C or pure Python.
_Loader = yaml.SafeLoader | yaml.CSafeLoader
_FAST: type[_Loader] = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"

_FIELD_NAMES = sorted(
    {
        field.alias or name
        for model in (
            Definition,
            Overlay,
            Contents,
            ContentsOverlay,
            Repository,
            Accounts,
            AccountsOverlay,
            User,
            Group,
            DirectoryEntry,
            FileEntry,
            SymlinkEntry,
            FileTest,
            AbsentTest,
            CommandTest,
            HttpTest,
            Compliance,
            ComplianceOverlay,
            Waiver,
            VexStatement,
            PackageDefinition,
            Patch,
            Dates,
            DebianPackageTracker,
            GithubReleaseTracker,
            GithubTagTracker,
            OciImageTracker,
            UrlTracker,
            JsonUrlTracker,
            IncrementTracker,
            VarSpec,
        )
        for name, field in model.model_fields.items()
    }
)


def load_definition(path: Path, *, variables: Mapping[str, str] | None = None) -> Definition:
    """Load and validate the definition at ``path``, and every variant it declares.

    ``${NAME}`` in the templated fields takes the ``value`` of the tracker variable ``NAME``, or
    ``variables[NAME]`` when given (:mod:`bastion.catalog._template`).

    Raises :class:`~bastion.errors.DefinitionError` (``where`` is ``file:line``, the message starts
    with the field path) for a malformed file, :class:`~bastion.errors.InputError` for one that
    cannot be read.
    """
    data, lines = _parse(_read(path), path)
    data = substitute(data, lines, path, variables)
    try:
        definition = Definition.model_validate(data, context={"path": path})
    except ValidationError as err:
        raise _diagnose(err, path, lines, ()) from None
    variants = {}
    for name in definition.variant_names():
        prefix = ("variants", name)
        try:
            variants[name] = merge_variant(definition, name)
        except OverlayError as err:
            loc, line = _locate(err.loc, lines, prefix)
            raise DefinitionError(f"{field_path(loc)}: {err.message}", where=f"{path}:{line}") from None
        except ValidationError as err:
            raise _diagnose(err, path, lines, prefix) from None
    definition.keep_variants(variants)
    return definition


def load_package_definition(path: Path) -> PackageDefinition:
    """Load and validate the package definition at ``path``, with errors as :func:`load_definition`'s."""
    data, lines = _parse(_read(path), path, needs="'source' and 'reason'")
    try:
        return PackageDefinition.model_validate(data)
    except ValidationError as err:
        raise _diagnose(err, path, lines, ()) from None


def _read(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_DEFINITION_BYTES + 1)
    except FileNotFoundError:
        raise InputError("no such definition file", where=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a definition file", where=str(path)) from None
    except OSError as err:
        raise InputError(f"cannot read the definition: {err.strerror}", where=str(path)) from None
    if len(raw) > MAX_DEFINITION_BYTES:
        raise DefinitionError(f"the file is larger than {MAX_DEFINITION_BYTES:,} bytes", where=str(path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DefinitionError("not UTF-8 text", where=f"{path}:{line}") from None


def _parse(text: str, path: Path, *, needs: str = "'name'") -> tuple[Any, Lines]:
    if _FAST is not yaml.SafeLoader:
        try:
            return _compose(text, path, needs, _FAST)
        except yaml.YAMLError:
            pass  # not YAML to libyaml: the pure-Python parser says where and why
    try:
        return _compose(text, path, needs, yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        message = f"YAML syntax error: {err.problem or err.context}"
        if err.context and err.problem and err.context_mark:
            message += f" ({err.context} at line {err.context_mark.line + 1})"
        raise DefinitionError(message, where=where) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow
        line = text[: err.position].count("\n") + 1
        message = f"YAML syntax error: character #x{err.character:04x} is not allowed ({err.reason})"
        raise DefinitionError(message, where=f"{path}:{line}") from None


def _compose(text: str, path: Path, needs: str, kind: type[_Loader]) -> tuple[Any, Lines]:
    """The data and lines of ``text`` read by ``kind``; YAML errors are left to the caller."""
    # Depth and aliases bounded before composing: the composer recurses once per level (in C, for
    # libyaml's, where a stack overflow would kill the process).
    try:
        check_yaml(text, where=str(path), max_depth=_MAX_DEPTH, max_nodes=_MAX_NODES, loader=kind)
    except InputError as err:
        raise DefinitionError(err.message, where=err.where) from None
    loader = kind(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise DefinitionError(
                f"the file is empty; a definition needs at least {needs}", where=f"{path}:1"
            )
        if not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1
            raise DefinitionError("the top level must be a mapping, e.g. 'name: ...'", where=f"{path}:{line}")
        builder = _Builder(loader, path, root.start_mark.line + 1)
        return builder.convert(root, (), 0), builder.lines
    finally:
        loader.dispose()


class _Builder:
    """Plain data from composed nodes, and the line of every field path."""

    def __init__(self, loader: _Loader, path: Path, root_line: int) -> None:
        self.loader = loader
        self.path = path
        self.lines: Lines = {(): root_line}
        self.nodes = 0

    def fail(self, node: yaml.Node, message: str) -> DefinitionError:
        return DefinitionError(message, where=f"{self.path}:{node.start_mark.line + 1}")

    def convert(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise self.fail(node, "the document is too large or too deeply nested (aliases?)")
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise self.fail(node, f"{field_path(loc) or 'top level'}: unsupported YAML tag {node.tag!r}")
            return self._mapping(node, loc, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(node, f"{field_path(loc)}: unsupported YAML tag {node.tag!r}")
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.convert(item, (*loc, index), depth + 1))
            return items
        # Scalars: SafeLoader's own rules (int, bool, null, float, timestamp; unknown tags refused).
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise self.fail(
                    key_node, f"{field_path(loc) or 'top level'}: YAML merge keys ('<<') are not supported"
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"{field_path(loc) or 'top level'}: a key must be a plain name")
            # Keys are names, taken as written: "on" or "1" stay strings (SafeLoader would make
            # them a bool and an int).
            key = str(key_node.value)
            if key in result:
                first = self.lines[(*loc, key)]
                raise self.fail(key_node, f"{field_path((*loc, key))}: duplicate key (first at line {first})")
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, (*loc, key), depth + 1)
        return result


def _nearest(loc: Loc, lines: Lines) -> tuple[int, int]:
    """How much of ``loc`` the file has, and the line of that part."""
    for length in range(len(loc), -1, -1):
        if loc[:length] in lines:
            return length, lines[loc[:length]]
    return 0, lines[()]


def _locate(loc: Loc, lines: Lines, prefix: Loc) -> tuple[Loc, int]:
    """The field path to report and its line; a variant's field is blamed on its overlay if set there."""
    if prefix:
        found, line = _nearest((*prefix, *loc), lines)
        if found > len(prefix):
            return (*prefix, *loc), line
        top_found, top_line = _nearest(loc, lines)
        if top_found > 0 or found < len(prefix):
            return loc, top_line
        return (*prefix, *loc), line
    return loc, _nearest(loc, lines)[1]


def _diagnose(err: ValidationError, path: Path, lines: Lines, prefix: Loc) -> DefinitionError:
    problems: list[tuple[int, str]] = []
    for error in err.errors(include_url=False):
        loc: Loc = tuple(
            part
            for part in error["loc"]
            if part not in UNION_TAGS and part not in TRACKER_TAGS and part != "[key]"
        )
        if error["type"] == ITEM_ERROR:
            loc = (*loc, error.get("ctx", {})["item"])
        loc, line = _locate(loc, lines, prefix)
        message = _message(error, loc)
        problems.append((line, f"{field_path(loc)}: {message}" if loc else message))
    problems.sort(key=lambda problem: problem[0])
    line, text = problems[0]
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more error{'s' if len(problems) > 2 else ''})"
    return DefinitionError(text, where=f"{path}:{line}")


def _message(error: ErrorDetails, loc: Loc) -> str:
    kind, message, given = error["type"], error["msg"], error["input"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(key, [name for name in _FIELD_NAMES if name != key], n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required field is missing"
    message = message.removeprefix("Value error, ")
    if kind.endswith("_type"):
        message += f" (got {_describe(given)})"
        if kind == "string_type" and isinstance(given, bool | int | float | datetime.date):
            # YAML read a number, a boolean (yes, on) or a date; quoting makes it a string.
            message = message[:-1] + "; quote it to keep it a string)"
    return message


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool | int | float | datetime.date):
        return f"{type(value).__name__} {value}"
    return repr(value)
