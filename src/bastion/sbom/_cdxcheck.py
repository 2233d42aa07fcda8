"""CycloneDX 1.6 JSON-schema validation in linear time, as strict as cyclonedx-python-lib's
``JsonStrictValidator``.

That validator is jsonschema's ``Draft7Validator`` over the strict 1.6 schema. Its ``uniqueItems``
keyword sorts an array's items when they sort and otherwise compares every pair: CycloneDX's
``components``, ``dependencies`` and ``properties`` are arrays of objects, which do not sort, so a
317-package document cost 1.39 million comparisons (docs/benchmarks.md). Here the same schema, registry
and format checker are used with a validator class made by ``jsonschema.validators.extend`` (jsonschema's
documented way to change a keyword) in which ``uniqueItems`` (JSON Schema draft 7, 6.4.3: "all of its
elements are unique") and ``enum`` (6.1.2: "equal to one of the elements") look items up by a hashable
key that is equal exactly when jsonschema's ``equal`` says two instances are (``true`` is not ``1``,
``1`` is ``1.0``, objects and arrays compared member by member). ``tests/sbom/test_cyclonedx_validation.py``
keeps ``JsonStrictValidator`` as the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from bastion.errors import InternalError

__all__ = ["cyclonedx_schema_errors"]

_SCHEMA_PREFIX = "http://cyclonedx.org/schema/"


def _key(value: object) -> object:
    """A hashable stand-in for a JSON value, equal to another's exactly when jsonschema's ``equal``
    holds (TypeError for anything that is not JSON, which then goes to jsonschema's own check)."""
    if isinstance(value, str):
        return ("s", value)
    if value is True or value is False:
        return ("b", value)
    if value is None:
        return ("z",)
    if isinstance(value, int | float):
        return ("n", value)  # 1 == 1.0 and hash(1) == hash(1.0), as jsonschema compares them
    if isinstance(value, Mapping):
        return ("m", frozenset((name, _key(item)) for name, item in value.items()))
    if isinstance(value, Sequence):
        return ("l", tuple(_key(item) for item in value))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _unique(items: Sequence[object]) -> bool:
    seen: set[object] = set()
    for item in items:
        key = _key(item)
        if key in seen:
            return False
        seen.add(key)
    return True


def _unique_items(
    validator: Validator, unique: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if unique and validator.is_type(instance, "array"):
        try:
            duplicated = not _unique(instance)
        except TypeError:  # not plain JSON: jsonschema's own (pairwise) keyword decides
            yield from _DRAFT7_KEYWORDS["uniqueItems"](validator, unique, instance, schema)
            return
        if duplicated:
            yield ValidationError(f"{instance!r} has non-unique elements")


# The keys of each enum of the schema, by the identity of its list (kept here, so the id is not reused).
_ENUM_KEYS: dict[int, tuple[Sequence[object], frozenset[object]]] = {}


def _enum_keys(enums: Sequence[object]) -> frozenset[object]:
    known = _ENUM_KEYS.get(id(enums))
    if known is None or known[0] is not enums:
        known = _ENUM_KEYS[id(enums)] = (enums, frozenset(map(_key, enums)))
    return known[1]


def _enum(
    validator: Validator, enums: Sequence[object], instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # The SPDX schema's licence list has ~700 entries, compared one by one for every licence id by
    # jsonschema's keyword; a short enum is as quick that way.
    present: bool | None = None
    if isinstance(enums, list) and len(enums) > 8:
        try:
            present = _key(instance) in _enum_keys(enums)
        except TypeError:
            present = None
    if present is None:
        yield from _DRAFT7_KEYWORDS["enum"](validator, enums, instance, schema)
    elif not present:
        yield ValidationError(f"{instance!r} is not one of {enums!r}")


_DRAFT7_KEYWORDS = Draft7Validator.VALIDATORS
_LinearDraft7 = validators.extend(  # type: ignore[no-untyped-call]  # jsonschema's stubs leave it untyped
    Draft7Validator, {"uniqueItems": _unique_items, "enum": _enum}
)


@cache
def _validator() -> Validator:
    # The schema files cyclonedx-python-lib's JsonStrictValidator loads (the strict 1.6 schema and the
    # three it refers to), registered under the same URIs.
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.schema._res import BOM_JSON_STRICT, CRYPTOGRAPHY_DEFS, JSF, SPDX_JSON

    def load(path: str) -> Any:
        return json.loads(Path(path).read_text(encoding="utf-8"))

    registry: Registry[Any] = Registry().with_resources(
        [
            (f"{_SCHEMA_PREFIX}spdx.SNAPSHOT.schema.json", DRAFT7.create_resource(load(SPDX_JSON))),
            (
                f"{_SCHEMA_PREFIX}cryptography-defs.SNAPSHOT.schema.json",
                DRAFT7.create_resource(load(CRYPTOGRAPHY_DEFS)),
            ),
            (f"{_SCHEMA_PREFIX}jsf-0.82.SNAPSHOT.schema.json", DRAFT7.create_resource(load(JSF))),
        ]
    )
    schema_file = BOM_JSON_STRICT[SchemaVersion.V1_6]
    if schema_file is None:  # pragma: no cover - the library ships it (its JsonStrictValidator needs it)
        raise InternalError("cyclonedx-python-lib has no strict CycloneDX 1.6 JSON schema")
    validator: Validator = _LinearDraft7(
        load(schema_file), registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER
    )
    return validator


def cyclonedx_schema_errors(document: Any) -> list[ValidationError]:
    """The errors of a parsed CycloneDX 1.6 JSON document against the strict 1.6 schema: what
    ``JsonStrictValidator(SchemaVersion.V1_6).validate_str(..., all_errors=True)`` finds, in linear time."""
    return list(_validator().iter_errors(document))
