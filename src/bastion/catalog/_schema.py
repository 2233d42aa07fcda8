"""The definition's digest and its JSON schema.

``bastion schema -o docs/definition-schema.json`` regenerates the checked-in schema; a test
fails when it drifts from the models.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bastion.catalog._model import Definition, Variant
from bastion.catalog._package import PackageDefinition

__all__ = [
    "definition_schema",
    "normalised_digest",
    "package_schema",
    "render_package_schema",
    "render_schema",
]

# Bump when the meaning of a definition changes without its content changing (a merge rule, say),
# so that lock files made under the old meaning no longer match.
_DIGEST_FORMAT = 1


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def normalised_digest(definition: Definition) -> str:
    """``sha256:<hex>`` of the definition's meaning, not of its text.

    The canonical JSON (sorted keys, compact) of the validated definition with every default
    written out, and of each variant as merged, less the fields that affect neither resolution nor
    the image (``_NOT_DIGESTED``). Comments, whitespace, key order and spellings that normalise alike (``"755"`` and
    ``"0755"``, ``8080`` and ``8080/tcp``) do not change it; a change of a default or of a merge rule
    does. The file's path is not part of it.
    """
    document = {
        "format": _DIGEST_FORMAT,
        "definition": _dump(definition),
        "variants": {name: _dump(definition.variant(name)) for name in definition.variant_names()},
    }
    return "sha256:" + hashlib.sha256(_canonical(document)).hexdigest()


#: Fields that change neither what is resolved nor what is built, so that editing them does not
#: invalidate the lock: ``vex`` statements are read when the VEX document is generated; ``track``
#: and ``dates`` are read by the factory (a tracker variable's value is digested where it is
#: substituted, in the templated fields).
_NOT_DIGESTED = ("vex", "track", "dates")
#: Top-level fields added after locks were first written, left out of the digest at their default.
_ADDED_AT_TOP: dict[str, object] = {"from": None, "builds": [], "artifacts": []}
#: Fields of image tests added to the format after locks were first written, with their defaults: at the
#: default they are left out of the digest, so that a Bastion that knows them reads existing locks as before.
_ADDED_TO_TESTS: dict[str, object] = {"read-only": False, "platforms": None}
#: Fields of ``contents`` added after locks were first written, left out of the digest at their
#: default (``None`` in an overlay that does not set them).
_ADDED_TO_CONTENTS: dict[str, tuple[object, ...]] = {"bastion-repository": (False, None)}


def _dump(model: Definition | Variant) -> dict[str, Any]:
    dumped = model.model_dump(mode="json", by_alias=True)
    overlays = [o for o in (dumped.get("variants") or {}).values() if isinstance(o, dict)]
    for part in (dumped, *overlays):
        for name in _NOT_DIGESTED:
            part.pop(name, None)
    for key, default in _ADDED_AT_TOP.items():
        if key in dumped and dumped[key] == default:
            del dumped[key]
    for part in (dumped, *overlays):
        contents = part.get("contents")
        if isinstance(contents, dict):
            for key, defaults in _ADDED_TO_CONTENTS.items():
                if key in contents and any(contents[key] is d for d in defaults):
                    del contents[key]
    _drop_added_defaults(dumped)
    return dumped


def _drop_added_defaults(node: Any, *, in_tests: bool = False) -> None:
    if isinstance(node, dict):
        if in_tests:
            for key, default in _ADDED_TO_TESTS.items():
                if key in node and node[key] == default and type(node[key]) is type(default):
                    del node[key]
        for key, child in node.items():
            _drop_added_defaults(child, in_tests=key == "tests")
    elif isinstance(node, list):
        for child in node:
            _drop_added_defaults(child, in_tests=in_tests)


def _drop_property_titles(node: Any) -> None:
    """Pydantic titles each property after its name ("Work-Dir"), which adds nothing."""
    if isinstance(node, dict):
        for prop in node.get("properties", {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        for child in node.values():
            _drop_property_titles(child)
    elif isinstance(node, list):
        for child in node:
            _drop_property_titles(child)


def definition_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a definition file, from the models."""
    schema = Definition.model_json_schema(by_alias=True, mode="validation")
    _drop_property_titles(schema)
    # Fields in the order a definition is written: name first, variants last.
    properties = schema["properties"]
    first, last = ("name", "image"), ("variants",)
    schema["properties"] = {
        **{key: properties[key] for key in first},
        **{key: value for key, value in properties.items() if key not in (*first, *last)},
        **{key: properties[key] for key in last},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Bastion image definition",
    }


def render_schema() -> str:
    """The schema as checked in at ``docs/definition-schema.json``."""
    return json.dumps(definition_schema(), indent=2, ensure_ascii=False) + "\n"


def package_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a package definition file (a source package to rebuild)."""
    schema = PackageDefinition.model_json_schema(by_alias=True, mode="validation")
    _drop_property_titles(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "Bastion package definition",
    }


def render_package_schema() -> str:
    """The schema as checked in at ``docs/package-schema.json``."""
    return json.dumps(package_schema(), indent=2, ensure_ascii=False) + "\n"
