"""in-toto Statement v1: built, serialised and parsed with validation."""

from __future__ import annotations

import json

import pytest

from bastion.attest import STATEMENT_TYPE_V1, Subject, make_statement, parse_statement
from bastion.errors import InputError

DIGEST = "0" * 62 + "ab"


def valid() -> dict[str, object]:
    return {
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": "img", "digest": {"sha256": DIGEST}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "x"}},
    }


def test_build_serialise_parse_round_trip() -> None:
    statement = make_statement(
        [Subject.for_digest("bastion/python:3.11", f"sha256:{DIGEST}")],
        "https://spdx.dev/Document",
        {"spdxVersion": "SPDX-2.3", "n": [1, 2.5, None, True]},
    )
    doc = json.loads(statement.to_json())
    assert list(doc) == ["_type", "subject", "predicateType", "predicate"]
    assert doc == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "bastion/python:3.11", "digest": {"sha256": DIGEST}}],
        "predicateType": "https://spdx.dev/Document",
        "predicate": {"spdxVersion": "SPDX-2.3", "n": [1, 2.5, None, True]},
    }
    assert parse_statement(statement.to_json()) == statement


def test_optional_and_extra_fields() -> None:
    doc = valid()
    del doc["predicate"]
    doc["subject"] = [
        {"digest": {"sha512": "a" * 128, "customHash": "Not-Hex"}, "uri": "https://x.invalid/a"}
    ]
    doc["unknownTopLevel"] = 1
    statement = parse_statement(json.dumps(doc).encode())
    assert statement.predicate is None and statement.subject[0].name is None
    # Other ResourceDescriptor fields are kept; unknown algorithms are kept verbatim.
    assert json.loads(statement.to_json())["subject"][0]["uri"] == "https://x.invalid/a"
    assert statement.subject[0].digest["customHash"] == "Not-Hex"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update({"_type": "https://in-toto.io/Statement/v0.1"}), "_type"),
        (lambda d: d.pop("_type"), "_type"),
        (lambda d: d.update({"subject": []}), "subject"),
        (lambda d: d.pop("subject"), "subject"),
        (lambda d: d.update({"subject": [{"name": "x", "digest": {}}]}), "digest"),
        (lambda d: d.update({"subject": [{"name": "x"}]}), "digest"),
        (lambda d: d.update({"subject": [{"digest": {"sha256": DIGEST.upper()}}]}), "lowercase hex"),
        (lambda d: d.update({"subject": [{"digest": {"sha256": "ab"}}]}), "64 hex digits"),
        (lambda d: d.pop("predicateType"), "predicateType"),
        (lambda d: d.update({"predicateType": ""}), "predicateType"),
        (lambda d: d.update({"predicate": [1]}), "predicate"),
    ],
)
def test_invalid_statements_are_rejected(change: object, message: str) -> None:
    doc = valid()
    change(doc)  # type: ignore[operator]
    with pytest.raises(InputError, match="not an in-toto Statement v1") as info:
        parse_statement(json.dumps(doc).encode(), where="payload")
    assert message in info.value.message
    assert info.value.where == "payload"


def test_not_json() -> None:
    with pytest.raises(InputError, match="not an in-toto Statement v1"):
        parse_statement(b"\xff not json")


def test_make_statement_validates() -> None:
    with pytest.raises(InputError, match="invalid in-toto statement"):
        make_statement([], "https://x.invalid/p")
    with pytest.raises(InputError, match="algorithm:hex"):
        Subject.for_digest("x", DIGEST)
