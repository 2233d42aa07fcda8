"""The one registry of predicate types: every type Bastion writes or reads, its URI and the short names
(aliases) commands and policies accept for it. Producers (the build, compliance), ``attest``, ``verify``
and policies all resolve names here.

The URIs are the ones attestations already carry (cosign's ``--type`` names where cosign has one:
``spdxjson``, ``cyclonedx``, ``slsaprovenance1``, ``openvex``, ``vuln``): changing one would make
every image signed before unverifiable, so a new version of a predicate gets a new entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bastion.attest._legacy import SIMPLE_SIGNING_MEDIA_TYPE
from bastion.errors import InputError
from bastion.identifiers import COMPLIANCE_PREDICATE_URI, REVIEW_PREDICATE_URI, TEST_REPORT_PREDICATE_URI

__all__ = [
    "COMPLIANCE_PREDICATE_TYPE",
    "CVE_SCAN_PREDICATE_TYPE",
    "CYCLONEDX_PREDICATE_TYPE",
    "DEFAULT_REQUIRED",
    "OPENVEX_PREDICATE_TYPE",
    "PREDICATE_ALIASES",
    "PREDICATE_TYPES",
    "PROVENANCE_PREDICATE_TYPE",
    "REVIEW_PREDICATE_TYPE",
    "SIGNATURE_PREDICATE_TYPE",
    "SPDX_PREDICATE_TYPE",
    "TEST_REPORT_PREDICATE_TYPE",
    "PredicateType",
    "predicate_alias",
    "resolve_predicate_type",
]


@dataclass(frozen=True)
class PredicateType:
    """A predicate type: ``name`` is its short name in listings, ``aliases`` other names accepted."""

    name: str
    uri: str
    aliases: tuple[str, ...] = ()


#: SPDX 2.3 JSON (in-toto attestation ``predicates/spdx.md``).
SPDX_PREDICATE_TYPE = "https://spdx.dev/Document"
#: CycloneDX 1.6 JSON (in-toto attestation ``predicates/cyclonedx.md``).
CYCLONEDX_PREDICATE_TYPE = "https://cyclonedx.org/bom/v1.6"
#: SLSA Build Provenance v1 (https://slsa.dev/spec/v1.0/provenance).
PROVENANCE_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: OpenVEX v0.2.0 (in-toto attestation ``predicates/vex.md``).
OPENVEX_PREDICATE_TYPE = "https://openvex.dev/ns/v0.2.0"
#: cosign's vulnerability attestation (sigstore/cosign specs/COSIGN_VULN_ATTESTATION_SPEC.md).
CVE_SCAN_PREDICATE_TYPE = "https://cosign.sigstore.dev/attestation/vuln/v1"
#: Bastion's compliance result (``docs/compliance.md``).
COMPLIANCE_PREDICATE_TYPE = COMPLIANCE_PREDICATE_URI
#: Bastion's report of an image's tests (``docs/attestations.md``).
TEST_REPORT_PREDICATE_TYPE = TEST_REPORT_PREDICATE_URI
#: Bastion's upstream diff review (``docs/guardrail.md``, "The review attestation").
REVIEW_PREDICATE_TYPE = REVIEW_PREDICATE_URI
#: A legacy cosign signature has no predicate type: its payload's media type (cosign
#: ``specs/SIGNATURE_SPEC.md`` "Simple Signing") names it in listings and filters.
SIGNATURE_PREDICATE_TYPE = SIMPLE_SIGNING_MEDIA_TYPE

PREDICATE_TYPES: tuple[PredicateType, ...] = (
    PredicateType("spdx", SPDX_PREDICATE_TYPE, ("spdxjson",)),
    PredicateType("cyclonedx", CYCLONEDX_PREDICATE_TYPE, ("cdx",)),
    PredicateType("provenance", PROVENANCE_PREDICATE_TYPE, ("slsa", "slsaprovenance1")),
    PredicateType("vex", OPENVEX_PREDICATE_TYPE, ("openvex",)),
    PredicateType("cves", CVE_SCAN_PREDICATE_TYPE, ("vuln", "cve-scan")),
    PredicateType("compliance", COMPLIANCE_PREDICATE_TYPE),
    PredicateType("tests", TEST_REPORT_PREDICATE_TYPE, ("test-report",)),
    PredicateType("upstream-review", REVIEW_PREDICATE_TYPE, ("review",)),
    PredicateType("signature", SIGNATURE_PREDICATE_TYPE),
)

#: Every accepted name → its URI.
PREDICATE_ALIASES: Mapping[str, str] = {
    alias: entry.uri for entry in PREDICATE_TYPES for alias in (entry.name, *entry.aliases)
}
_NAMES: Mapping[str, str] = {entry.uri: entry.name for entry in PREDICATE_TYPES}

#: What ``verify`` requires on every platform unless told otherwise: what every build attaches.
DEFAULT_REQUIRED = (SPDX_PREDICATE_TYPE, CYCLONEDX_PREDICATE_TYPE, PROVENANCE_PREDICATE_TYPE)


def resolve_predicate_type(text: str) -> str:
    """An alias (``spdx``, ``provenance`` ...) or a predicate type URI, as a URI."""
    if text in PREDICATE_ALIASES:
        return PREDICATE_ALIASES[text]
    if "/" in text and ":" in text:
        return text
    raise InputError(
        f"unknown predicate type {text!r}",
        hint="use a URI or one of: " + ", ".join(sorted(PREDICATE_ALIASES)),
    )


def predicate_alias(uri: str) -> str:
    """The short name of a predicate type for listings (the URI itself when it has none)."""
    return _NAMES.get(uri, uri)
