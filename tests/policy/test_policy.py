"""Verification policies: loading with clear errors, and conditions that fail closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import InputError
from bastion.policy import evaluate_conditions, load_policy

PROVENANCE = "https://slsa.dev/provenance/v1"
ALIASES = {"provenance": PROVENANCE, "spdx": "https://spdx.dev/Document"}


def _resolve(text: str) -> str:
    return ALIASES.get(text, text)


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


PREDICATE = {
    "runDetails": {"builder": {"id": "https://bastion.invalid/slsa/builders/local"}},
    "buildDefinition": {
        "externalParameters": {
            "locked": True,
            "source": {"repository": "https://git.example.org/platform/x"},
        },
        "resolvedDependencies": [{"uri": "http://mirror/pool/a.deb"}],
    },
}


def test_conditions_hold_and_fail_closed(tmp_path: Path) -> None:
    loaded = load_policy(
        _policy(
            tmp_path,
            """
required: [spdx]
keys: [keys/release.pub]
conditions:
  - {predicate: provenance, path: runDetails.builder.id, equals: "https://bastion.invalid/slsa/builders/local"}
  - {predicate: provenance, path: buildDefinition.externalParameters.locked, equals: true}
  - {predicate: provenance, path: buildDefinition.externalParameters.source.repository, matches: "^https://git\\\\.example\\\\.org/platform/"}
  - {predicate: provenance, path: buildDefinition.resolvedDependencies.0.uri, one-of: ["http://mirror/pool/a.deb"]}
  - {predicate: provenance, path: buildDefinition.externalParameters.variant, equals: runtime}
""",
        )
    )
    assert loaded.key_files == [(tmp_path / "keys/release.pub").resolve()]
    assert loaded.predicate_types(_resolve) == ["https://spdx.dev/Document", PROVENANCE]
    results = evaluate_conditions(
        loaded.policy.conditions, {("linux/amd64", PROVENANCE): PREDICATE, ("linux/arm64", PROVENANCE): None},
        ["linux/amd64", "linux/arm64"], _resolve,
    )  # fmt: skip
    amd64 = [r for r in results if r.platform == "linux/amd64"]
    assert [r.ok for r in amd64] == [True, True, True, True, False]
    assert amd64[-1].reason == "buildDefinition.externalParameters.variant is absent"
    # An attestation that did not verify fails every condition on it: closed, not skipped.
    assert all(
        not r.ok and "no verified provenance" in (r.reason or "")
        for r in results
        if r.platform == "linux/arm64"
    )


def test_a_value_of_another_kind_does_not_match(tmp_path: Path) -> None:
    loaded = load_policy(
        _policy(tmp_path, "conditions:\n  - {predicate: provenance, path: buildDefinition, matches: x}\n")
    )
    (result,) = evaluate_conditions(loaded.policy.conditions, {("p", PROVENANCE): PREDICATE}, ["p"], _resolve)
    assert result.reason == "buildDefinition is dict, not text"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conditions:\n  - {predicate: provenance, path: a}\n", "exactly one of"),
        ("conditions:\n  - {predicate: provenance, path: a, equals: 1, matches: b}\n", "exactly one of"),
        ("conditions:\n  - {predicate: provenance, path: a, matches: '('}\n", "regular expression"),
        ("requird: [spdx]\n", "requird"),
        ("required: [spdx\n", "not valid YAML"),
    ],
)
def test_bad_policies_are_input_errors_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_policy(_policy(tmp_path, text))
    assert message in caught.value.diagnostic() and "policy.yaml" in caught.value.diagnostic()


def test_predicate_aliases_name_the_types_their_producers_write() -> None:
    from bastion.attest import CVE_SCAN_PREDICATE_TYPE as CVE_SCAN
    from bastion.attest import CYCLONEDX_PREDICATE_TYPE as CYCLONEDX
    from bastion.attest import OPENVEX_PREDICATE_TYPE as OPENVEX
    from bastion.attest import PREDICATE_ALIASES
    from bastion.attest import SPDX_PREDICATE_TYPE as SPDX
    from bastion.compliance import COMPLIANCE_PREDICATE_TYPE

    assert PREDICATE_ALIASES["compliance"] == COMPLIANCE_PREDICATE_TYPE
    assert PREDICATE_ALIASES["cves"] == CVE_SCAN == "https://cosign.sigstore.dev/attestation/vuln/v1"
    assert PREDICATE_ALIASES["spdx"] == SPDX and PREDICATE_ALIASES["cyclonedx"] == CYCLONEDX
    assert PREDICATE_ALIASES["vex"] == OPENVEX
    assert PREDICATE_ALIASES["provenance"] == "https://slsa.dev/provenance/v1"
