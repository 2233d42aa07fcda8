"""Profiles are data: YAML files that select rules of the catalogue and override them.

A profile file::

    name: my-service            # letters, digits, '.', '-' (it becomes xccdf_dev.bastion_profile_<name>)
    version: "1.0"
    title: My service baseline  # optional, defaults to the name
    description: ...            # optional
    extends: default            # optional: a built-in profile name or another file (relative paths
                                # are read from this file's directory)
    disable: [image_healthcheck]  # optional: rules of the base to leave out
    rules:                      # rules to add, or to override when the base has them
      - files_no_setid          # a rule name (or its xccdf_dev.bastion_rule_<name> id) ...
      - id: files_no_setid      # ... or a mapping with overrides
        severity: medium
        allow: [/usr/bin/ping]  # shell patterns
        params: {min_entropy: 4.5}
        disabled: false

The built-in profiles live in ``profiles/`` beside this module; ``default`` names
``bastion-container-baseline``.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bastion.compliance._model import NAMESPACE, ParamValue, Profile, Rule, RuleConfig, Severity
from bastion.compliance._rules import RULES
from bastion.errors import InputError

DEFAULT_PROFILE = "bastion-container-baseline"
_ALIASES = {"default": DEFAULT_PROFILE}
_MAX_BYTES = 1024 * 1024
_MAX_DEPTH = 8  # how many profiles an ``extends`` chain may stack
_RULE_PREFIX = f"xccdf_{NAMESPACE}_rule_"

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$", max_length=100)]
Param = str | int | float | bool | list[str]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    severity: Severity | None = None
    disabled: bool = False
    allow: list[str] | None = None
    params: dict[str, Param] = Field(default_factory=dict)


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    version: str = Field(min_length=1, max_length=100)
    title: str | None = None
    description: str = ""
    extends: str | None = None
    disable: list[str] = Field(default_factory=list)
    rules: list[str | _Entry] = Field(default_factory=list)


def builtin_profiles() -> list[str]:
    """The names of the profiles shipped with Bastion."""
    folder = resources.files("bastion.compliance").joinpath("profiles")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(spec: str | Path, *, base_dir: Path | None = None) -> Profile:
    """The profile ``spec`` names: a built-in name (``default``, ``bastion-container-baseline``) or a
    YAML file (a relative path is read from ``base_dir``, by default the working directory). Raises
    :class:`~bastion.errors.InputError` naming the file and field on bad input."""
    return _load(spec, depth=0, base_dir=base_dir or Path.cwd())


def builtin_name(spec: str) -> str:
    """The built-in profile name an alias stands for (``default`` -> ``bastion-container-baseline``)."""
    return _ALIASES.get(spec, spec)


def _load(spec: str | Path, *, depth: int, base_dir: Path) -> Profile:
    if depth > _MAX_DEPTH:
        raise InputError(f"profiles extend each other more than {_MAX_DEPTH} deep", where=str(spec))
    text, source, directory = _read(spec, base_dir)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", where=source) from exc
    try:
        document = _Document.model_validate(raw)
    except ValidationError as exc:
        # The deepest error names the field best (a rule entry is a string or a mapping: pydantic
        # reports both branches of the union; the mapping's error is the deeper one).
        error = max(exc.errors(), key=lambda e: len(e["loc"]))
        raise InputError(f"{_field(error['loc'])}: {error['msg']}", where=source) from exc

    configs: dict[str, RuleConfig] = {}
    if document.extends is not None:
        base = _load(document.extends, depth=depth + 1, base_dir=directory)
        configs = {c.rule.name: c for c in base.rules}
    for index, name in enumerate(document.disable):
        configs.pop(_rule(name, source, f"disable[{index}]").name, None)
    for index, item in enumerate(document.rules):
        entry = _Entry(id=item) if isinstance(item, str) else item
        where = f"rules[{index}]"
        rule = _rule(entry.id, source, where)
        if entry.disabled:
            configs.pop(rule.name, None)
            continue
        previous = configs.get(rule.name)
        configs[rule.name] = RuleConfig(
            rule=rule,
            severity=entry.severity or (previous.severity if previous else rule.severity),
            allow=tuple(entry.allow)
            if entry.allow is not None
            else (previous.allow if previous else rule.allow),
            params={
                **(previous.params if previous else {}),
                **_params(rule, entry.params, source, where),
            },
        )
    return Profile(
        name=document.name,
        title=document.title or document.name,
        version=document.version,
        description=document.description,
        rules=tuple(configs.values()),
        source=source,
    )


def _read(spec: str | Path, base_dir: Path) -> tuple[str, str, Path]:
    """The text of the profile ``spec`` names, how to name it in errors, and its directory."""
    name = str(spec)
    builtin = _ALIASES.get(name, name)
    if isinstance(spec, str) and builtin in builtin_profiles():
        resource = resources.files("bastion.compliance").joinpath("profiles", f"{builtin}.yaml")
        return resource.read_text(encoding="utf-8"), builtin, base_dir
    path = Path(spec)
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise InputError(
            f"no profile {name!r}",
            hint=f"give a profile file or one of: default, {', '.join(builtin_profiles())}",
        )
    data = path.read_bytes()
    if len(data) > _MAX_BYTES:
        raise InputError(f"profile is larger than {_MAX_BYTES} bytes", where=str(path))
    try:
        return data.decode("utf-8"), str(path), path.parent
    except UnicodeDecodeError as exc:
        raise InputError("profile is not UTF-8", where=str(path)) from exc


def _field(loc: tuple[str | int, ...]) -> str:
    """``rules[0].severity`` for pydantic's ``('rules', 0, '_Entry', 'severity')``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("str", "_Entry"):  # union branch names, not fields
            text += f".{part}" if text else part
    return text or "(document)"


def _rule(name: str, source: str, where: str) -> Rule:
    rule = RULES.get(name.removeprefix(_RULE_PREFIX))
    if rule is None:
        close = difflib.get_close_matches(name.removeprefix(_RULE_PREFIX), list(RULES), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else None
        raise InputError(f"{where}: unknown rule {name!r}", where=source, hint=hint)
    return rule


def _params(rule: Rule, given: dict[str, Param], source: str, where: str) -> dict[str, ParamValue]:
    result: dict[str, ParamValue] = {}
    for key, value in given.items():
        if key not in rule.params:
            known = ", ".join(sorted(rule.params)) or "none"
            raise InputError(
                f"{where}.params.{key}: rule {rule.name} has no such parameter (it has: {known})",
                where=source,
            )
        if isinstance(rule.params[key], tuple) != isinstance(value, list):
            kind = "a list" if isinstance(rule.params[key], tuple) else "a single value"
            raise InputError(f"{where}.params.{key}: must be {kind}", where=source)
        result[key] = tuple(value) if isinstance(value, list) else value
    return result
