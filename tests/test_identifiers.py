"""One owner for each name: Bastion's labels, annotations and URIs live in ``bastion.identifiers``,
predicate types in ``bastion.attest.PREDICATE_TYPES``; ``docs/identifiers.md`` lists both, and the
URIs signed attestations already carry never change (``docs/identifiers.md``: a released name is kept).
"""

from __future__ import annotations

import re

import pytest

from bastion import identifiers
from bastion.attest import (
    PREDICATE_ALIASES,
    PREDICATE_TYPES,
    predicate_alias,
    resolve_predicate_type,
)
from bastion.errors import InputError
from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src" / "bastion"
DOC = (REPO_ROOT / "docs" / "identifiers.md").read_text(encoding="utf-8")

# What attestations signed by earlier releases carry, and policies compare (docs/policy.md).
RELEASED = {
    "spdx": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom/v1.6",
    "provenance": "https://slsa.dev/provenance/v1",
    "vex": "https://openvex.dev/ns/v0.2.0",
    "cves": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "compliance": "https://bastion.invalid/attestations/compliance/v1",
    "tests": "https://bastion.invalid/attestations/test-report/v1",
    "upstream-review": "https://bastion.invalid/attestations/upstream-review/v1",
    "signature": "application/vnd.dev.cosign.simplesigning.v1+json",
}


def _names() -> dict[str, str]:
    return {name: getattr(identifiers, name) for name in identifiers.__all__}


def test_released_predicate_types_and_aliases_are_unchanged() -> None:
    assert {entry.name: entry.uri for entry in PREDICATE_TYPES} == RELEASED
    for alias, name in [("spdxjson", "spdx"), ("cdx", "cyclonedx"), ("slsa", "provenance"),
                        ("slsaprovenance1", "provenance"), ("openvex", "vex"), ("vuln", "cves")]:  # fmt: skip
        assert PREDICATE_ALIASES[alias] == RELEASED[name]
    assert identifiers.SLSA_BUILDER_ID == "https://bastion.invalid/slsa/builders/local"
    assert identifiers.SLSA_BUILD_TYPE == "https://bastion.invalid/slsa/build-types/debian-image/v1"


def test_every_name_resolves_and_lists_as_its_short_name() -> None:
    for entry in PREDICATE_TYPES:
        for alias in (entry.name, *entry.aliases):
            assert resolve_predicate_type(alias) == entry.uri
        assert predicate_alias(entry.uri) == entry.name
    assert resolve_predicate_type("https://example.test/p/v1") == "https://example.test/p/v1"
    with pytest.raises(InputError, match="unknown predicate type"):
        resolve_predicate_type("sbom")


def test_bastion_names_sit_in_their_namespace_and_are_documented() -> None:
    for name, value in _names().items():
        if name in ("LABEL_NAMESPACE", "URI_BASE"):
            continue
        if value.startswith("https://"):
            assert value.startswith(identifiers.URI_BASE), name
        else:
            assert value.startswith(identifiers.LABEL_NAMESPACE + "."), name
        assert f"`{value}`" in DOC, f"{name} ({value}) is not in docs/identifiers.md"
    for entry in PREDICATE_TYPES:
        assert f"`{entry.uri}`" in DOC and f"`{entry.name}`" in DOC
        assert all(f"`{alias}`" in DOC for alias in entry.aliases)


def test_no_module_spells_a_name_another_owns() -> None:
    """A string literal of a Bastion name or a predicate URI only in its owner module."""
    owned = [
        (re.compile(r"[\"']https://bastion\.invalid"), {"identifiers.py"}),
        (re.compile(r"[\"']dev\.bastion(?:\.[\w.-]+)?[\"']"), {"identifiers.py"}),  # a whole literal
        *[(re.compile(re.escape(f'"{uri}"')), {"attest/_predicates.py"}) for uri in RELEASED.values()],
    ]
    # The OpenVEX document's @context (OpenVEX spec v0.2.0), a field of the document, not its
    # predicate type, though the in-toto VEX predicate uses the same URI; and the legacy signature's
    # media type, which names the layer (cosign SIGNATURE_SPEC.md) the predicate type is taken from.
    allowed = {("vex/_model.py", RELEASED["vex"]), ("attest/_legacy.py", RELEASED["signature"])}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        where = str(path.relative_to(SRC))
        text = path.read_text(encoding="utf-8")
        for pattern, owners in owned:
            if where in owners or not pattern.search(text):
                continue
            if any(where == f and u in pattern.pattern.replace("\\", "") for f, u in allowed):
                continue
            found.append(f"{where}: {pattern.pattern}")
    assert not found
