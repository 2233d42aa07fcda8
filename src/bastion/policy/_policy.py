"""Verification policies: what a consumer requires of an image's attestations before it deploys it.

A policy is a small YAML file::

    # Which attestations must be present and verify on every platform (aliases or URIs).
    required: [spdx, cyclonedx, provenance]
    # The only keys whose signatures count (paths relative to this file). Without it: --key.
    keys: [keys/release.pub]
    # Conditions on the signed predicates; every one must hold on every platform.
    conditions:
      - predicate: provenance
        path: runDetails.builder.id
        equals: https://bastion.invalid/slsa/builders/local
      - predicate: provenance
        path: buildDefinition.externalParameters.source.repository
        matches: "^https://git\\.example\\.org/platform/"
      - predicate: provenance
        path: buildDefinition.externalParameters.locked
        equals: true

A condition reads a dotted ``path`` in the verified statement's predicate (a list element by its
index: ``resolvedDependencies.0.uri``) and compares it with ``equals``, ``one-of`` (a list) or
``matches`` (a Python regular expression, searched). It fails closed: a path that is absent, an
attestation that did not verify, or a value of another type is a failure with the reason (types are
compared as JSON has them: ``equals: 1`` does not hold for ``true`` nor for ``1.0``).

A policy that requires no attestation and states no condition is refused: it would pass any image.
The file is at most 1 MiB, nests at most 64 levels and expands (aliases counted as what they name) to
at most 10,000 nodes.
Thresholds on CVE and compliance results come with the issues that produce those predicates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bastion.documents import check_shape, check_yaml
from bastion.errors import InputError

_MISSING = object()
#: A policy is a short file written by a person.
MAX_POLICY_BYTES = 1024 * 1024
MAX_POLICY_NODES = 10_000


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=lambda n: n.replace("_", "-"))


class Condition(_Model):
    predicate: str
    path: Annotated[str, Field(min_length=1)]
    equals: Any = _MISSING
    one_of: list[Any] | None = None
    matches: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        given = [self.equals is not _MISSING, self.one_of is not None, self.matches is not None]
        if sum(given) != 1:
            raise ValueError("a condition has exactly one of 'equals', 'one-of' or 'matches'")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"'matches' is not a regular expression: {exc}") from None
        return self

    def describe(self) -> str:
        if self.matches is not None:
            return f"{self.path} matches {self.matches!r}"
        if self.one_of is not None:
            return f"{self.path} is one of {self.one_of!r}"
        return f"{self.path} == {self.equals!r}"

    def check(self, predicate: object) -> str | None:
        """None when the condition holds, else why not."""
        value = _lookup(predicate, self.path)
        if value is _MISSING:
            return f"{self.path} is absent"
        if self.matches is not None:
            if not isinstance(value, str):
                return f"{self.path} is {type(value).__name__}, not text"
            return None if re.search(self.matches, value) else f"{self.path} is {value!r}"
        if self.one_of is not None:
            found = any(_same(value, choice) for choice in self.one_of)
            return None if found else f"{self.path} is {_described(value)}"
        return None if _same(value, self.equals) else f"{self.path} is {_described(value)}"


class Policy(_Model):
    required: list[str] = ["spdx", "cyclonedx", "provenance"]
    keys: list[str] = []
    conditions: list[Condition] = []

    @model_validator(mode="after")
    def _checks_something(self) -> Policy:
        # Fail closed: a policy that requires no attestation and states no condition would pass
        # any image, signed or not.
        if not self.required and not self.conditions:
            raise ValueError("the policy checks nothing: give 'required' attestations or 'conditions'")
        return self


@dataclass(frozen=True)
class LoadedPolicy:
    path: Path
    policy: Policy

    @property
    def key_files(self) -> list[Path]:
        return [(self.path.parent / key).resolve() for key in self.policy.keys]

    def predicate_types(self, resolve: Any) -> list[str]:
        """Every predicate type the policy needs verified: the required ones and those its
        conditions read, resolved from aliases by ``resolve``, in order and without repeats."""
        wanted = [resolve(p) for p in self.policy.required] + [
            resolve(c.predicate) for c in self.policy.conditions
        ]
        return list(dict.fromkeys(wanted))


def load_policy(path: Path) -> LoadedPolicy:
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_BYTES:
            raise InputError(
                f"the policy is {size:,} bytes, more than the {MAX_POLICY_BYTES:,} accepted", where=str(path)
            )
        text = path.read_text(encoding="utf-8")
        # Depth and aliases bounded before PyYAML composes (it recurses) or copies out aliases.
        check_yaml(text, where=str(path), max_nodes=MAX_POLICY_NODES)
        data = yaml.safe_load(text)
        check_shape(data, where=str(path))
    except OSError as exc:
        raise InputError(f"cannot read the policy: {exc.strerror}", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"the policy is not UTF-8 text: {exc.reason}", where=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(
            f"the policy is not valid YAML: {getattr(exc, 'problem', exc)}", where=where
        ) from None
    try:
        policy = Policy.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"{field}: {first['msg']}", where=str(path)) from None
    return LoadedPolicy(path, policy)


@dataclass(frozen=True)
class ConditionResult:
    platform: str
    condition: str
    reason: str | None  # None: it holds

    @property
    def ok(self) -> bool:
        return self.reason is None


def evaluate_conditions(
    conditions: Sequence[Condition],
    predicates: Mapping[tuple[str, str], object | None],
    platforms: Sequence[str],
    resolve: Any,
) -> list[ConditionResult]:
    """Each condition on each platform; ``predicates`` maps (platform, predicate type) to the
    verified predicate, or None when that attestation did not verify."""
    results = []
    for platform in platforms:
        for condition in conditions:
            predicate = predicates.get((platform, resolve(condition.predicate)))
            if predicate is None:
                reason: str | None = f"no verified {condition.predicate} attestation"
            else:
                reason = condition.check(predicate)
            results.append(
                ConditionResult(platform, f"{condition.predicate}: {condition.describe()}", reason)
            )
    return results


def _lookup(node: object, path: str) -> object:
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _same(value: object, expected: object) -> bool:
    """Equality that also compares types, as JSON does: ``1`` is not ``true`` nor ``1.0`` (Python's
    ``1 == True`` would make ``equals: 1`` hold for ``true``). Depth is bounded by the loaders."""
    if type(value) is not type(expected):
        return False
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(_same(a, b) for a, b in zip(value, expected, strict=True))
    if isinstance(value, dict) and isinstance(expected, dict):
        return value.keys() == expected.keys() and all(_same(value[k], expected[k]) for k in value)
    return value == expected


def _described(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"
