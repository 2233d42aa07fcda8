"""Scalar types of the definition format: names, paths, modes, platforms, ports, signals.

Each type is an ``Annotated`` string (or int) whose validator gives a message a user can act on, and
whose JSON schema carries the same rule as a pattern, so editors that read ``definition-schema.json``
flag mistakes before Bastion does.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Hashable, Sequence, Sized
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    WithJsonSchema,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from bastion.debian import debian_platform, platform_spellings
from bastion.errors import InputError

__all__ = [
    "ITEM_ERROR",
    "AbsPath",
    "ArgList",
    "ComplianceName",
    "DefinitionName",
    "EnvName",
    "GroupName",
    "Id",
    "ImageName",
    "Matches",
    "Mode",
    "NonEmpty",
    "PackageSpec",
    "PlatformName",
    "Port",
    "RepositoryUri",
    "RunAs",
    "Signal",
    "SuiteName",
    "TagName",
    "TestName",
    "UserName",
    "VariantName",
    "unique",
]

#: Error type of a list-level check that blames one item; its context holds ``item``, the index,
#: which the loader appends to the error location so the message points at the right line.
ITEM_ERROR = "bastion_item"

_T = TypeVar("_T")


@dataclass(frozen=True)
class Matches:
    """``Annotated`` metadata: the string matches ``regex`` (JSON-schema syntax), or a readable error."""

    regex: str
    what: str
    example: str
    max_length: int = 256

    def check(self, value: str) -> str:
        if len(value) > self.max_length or not re.fullmatch(self.regex, value):
            raise ValueError(f"{value!r} is not a valid {self.what} (for example {self.example!r})")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        return {"type": "string", "pattern": self.regex, "maxLength": self.max_length}


@dataclass(frozen=True)
class NonEmpty:
    """``Annotated`` metadata: a list or mapping with at least one item.

    Checked after the items, unlike ``Field(min_length=1)``, which also reports a list whose only
    item is invalid as empty.
    """

    def check(self, value: Sized) -> Sized:
        if len(value) == 0:
            raise ValueError("must not be empty")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        result = handler(schema)
        result["minProperties" if result.get("type") == "object" else "minItems"] = 1
        return result


# A definition name becomes the last component of the default image name, so it follows the
# OCI distribution-spec path component grammar as well as the brief's [a-z0-9][a-z0-9._-]*.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
DefinitionName = Annotated[str, Matches(f"^{_COMPONENT}$", "definition name", "python", 128)]
ImageName = Annotated[
    str, Matches(f"^{_COMPONENT}(?:/{_COMPONENT})*$", "image repository name", "bastion/python")
]
# OCI distribution spec: tags are [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
TagName = Annotated[str, Matches(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$", "tag", "3.11-bookworm", 128)]
VariantName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9-]*$", "variant name", "dev", 64)]
TestName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9._-]*$", "test name", "no-shell", 128)]
ComplianceName = Annotated[
    str, Matches(r"^[a-z0-9][a-z0-9._-]*$", "compliance profile name", "cis-docker", 128)
]
# Debian Policy 5.6.7: at least two characters, lower case letters, digits, + - and .,
# starting with an alphanumeric; a leading "!" marks an exclusion.
# A name (Policy §5.6.1), "!name" to exclude it, or "name=version" to pin a version (Policy §5.6.12).
PackageSpec = Annotated[
    str,
    Matches(
        r"^(?:![a-z0-9][a-z0-9+.-]+|[a-z0-9][a-z0-9+.-]+(?:=(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*)?)$",
        "Debian package name (optionally name=version, or !name to exclude)",
        "python3.11",
        256,
    ),
]
# useradd(8) NAME_REGEX, without the trailing-$ machine accounts.
_ACCOUNT = r"[a-z_][a-z0-9_-]*"
UserName = Annotated[str, Matches(f"^{_ACCOUNT}$", "user name", "nonroot", 32)]
GroupName = Annotated[str, Matches(f"^{_ACCOUNT}$", "group name", "nonroot", 32)]
EnvName = Annotated[str, Matches(r"^[A-Za-z_][A-Za-z0-9_]*$", "environment variable name", "LANG", 256)]
SuiteName = Annotated[
    str, Matches(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", "suite or component name", "bookworm", 128)
]
RepositoryUri = Annotated[
    str, Matches(r"^(?:https?|file)://[^\s]+$", "repository URI", "http://mirror.example/debian", 2048)
]

#: A numeric user or group id; 4294967295 is (uid_t)-1 and never a real id.
Id = Annotated[int, Strict(), Field(ge=0, le=4294967294)]


def _absolute(value: str) -> str:
    if not value.startswith("/") or value.startswith("//") or "\0" in value:
        raise ValueError(f"{value!r} is not an absolute path")
    if posixpath.normpath(value) != value:
        raise ValueError(f"{value!r} is not a normalised path (no '.', '..', '//' or trailing '/')")
    return value


AbsPath = Annotated[
    str,
    AfterValidator(_absolute),
    WithJsonSchema({"type": "string", "pattern": "^/", "description": "an absolute, normalised path"}),
]


def _mode(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('write the mode as a quoted octal string such as "0755" (YAML reads 0755 as 493)')
    if isinstance(value, str) and re.fullmatch(r"[0-7]{3,4}", value):
        return value.zfill(4)
    if isinstance(value, str):
        raise ValueError(f"{value!r} is not an octal mode such as '0755'")
    return value


#: An octal permission string, normalised to four digits ("755" -> "0755").
Mode = Annotated[
    str,
    BeforeValidator(_mode),
    WithJsonSchema({"type": "string", "pattern": "^[0-7]{3,4}$", "description": 'octal, e.g. "0755"'}),
]

_RUN_AS = re.compile(rf"(?:{_ACCOUNT}|[0-9]+)(?::(?:{_ACCOUNT}|[0-9]+))?")


def _run_as(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not _RUN_AS.fullmatch(value):
        raise ValueError(f"{value!r} is not a user: a name or uid, optionally with ':group' or ':gid'")
    return value


#: The OCI config ``User``: ``name``, ``uid``, ``name:group`` or ``uid:gid``; a bare int is accepted.
RunAs = Annotated[
    str,
    BeforeValidator(_run_as),
    WithJsonSchema({"type": ["string", "integer"], "description": "user name or uid, optionally :group"}),
]


def _port(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return value
    match = re.fullmatch(r"([0-9]{1,5})(?:/(tcp|udp))?", value)
    if match is None or not 1 <= int(match[1]) <= 65535:
        raise ValueError(f"{value!r} is not a port: N or N/tcp or N/udp with N in 1..65535")
    return f"{int(match[1])}/{match[2] or 'tcp'}"


#: An exposed port, normalised to ``N/tcp`` or ``N/udp`` as OCI ``ExposedPorts`` keys are.
Port = Annotated[
    str,
    BeforeValidator(_port),
    WithJsonSchema(
        {"type": ["string", "integer"], "pattern": "^[0-9]{1,5}(/(tcp|udp))?$", "description": "8080/tcp"}
    ),
]

# signal(7) on Linux; "SIG" may be left out and is added.
_SIGNALS = frozenset(
    {
        *("HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2"),
        *("PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG"),
        *("XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS", "RTMIN", "RTMAX"),
    }
)


def _signal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = value.removeprefix("SIG")
    if name in _SIGNALS or re.fullmatch(r"RTMIN\+[0-9]{1,2}|RTMAX-[0-9]{1,2}", name):
        return f"SIG{name}"
    raise ValueError(f"{value!r} is not a signal name such as 'SIGTERM'")


Signal = Annotated[
    str,
    BeforeValidator(_signal),
    WithJsonSchema({"type": "string", "pattern": "^(SIG)?[A-Z0-9+-]+$", "description": "e.g. SIGTERM"}),
]

ArgList = tuple[str, ...]


def _platform_name(text: str) -> str:
    try:
        return str(debian_platform(text))
    except InputError as err:
        raise ValueError(err.message) from None


#: A platform Debian builds for, in its canonical OCI form (``linux/armhf`` -> ``linux/arm/v7``,
#: ``linux/arm64/v8`` -> ``linux/arm64``); the one table and normalisation are ``bastion.debian``'s.
PlatformName = Annotated[
    str,
    AfterValidator(_platform_name),
    WithJsonSchema({"type": "string", "enum": platform_spellings(), "description": "linux/amd64"}),
]


def unique(key: Callable[[Any], Hashable], what: str) -> Any:
    """A tuple validator refusing two items with the same key; the error blames the second one."""

    def check(items: Sequence[_T]) -> Sequence[_T]:
        seen: dict[Hashable, int] = {}
        for index, item in enumerate(items):
            first = seen.setdefault(key(item), index)
            if first != index:
                message = f"duplicate {what} {key(item)!r} (first at [{first}])"
                raise PydanticCustomError(ITEM_ERROR, "{message}", {"message": message, "item": index})
        return items

    return AfterValidator(check)
