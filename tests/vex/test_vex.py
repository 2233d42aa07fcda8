from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from bastion.errors import InputError
from bastion.vex import (
    AuthoredStatement,
    VexStatus,
    apply_vex,
    generate_vex,
    load_vex,
    parse_openvex,
    to_cyclonedx_vex,
)
from bastion.vuln import Finding, PackageRef, ScanResult, Severity, State, match_sbom
from tests.vuln.helpers import NODE_VEX, OPENVEX_SCHEMA, deb, sbom

DIGEST = "sha256:" + "ab" * 32
ROOT = (
    f"pkg:oci/python@{DIGEST.replace(':', '%3A')}?arch=amd64&repository_url=registry.example/bastion/python"
)


def _finding(cve: str, purl: str, name: str = "pip", state: State = State.FIXED) -> Finding:
    ref = PackageRef("pypi", name, "21.0", purl, "PyPI", name, "21.0")
    return Finding(cve, (), ref, state, "21.1", Severity.HIGH, "cvss", None)


def _result(*findings: Finding) -> ScanResult:
    return ScanResult("registry.example/bastion/python:3.11", ROOT, DIGEST, "linux/amd64", "debian-12",
                      findings=list(findings))  # fmt: skip


def _doc(*statements: dict[str, object], timestamp: str = "2024-01-01T00:00:00Z") -> dict[str, object]:
    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": f"https://example.invalid/vex/{timestamp}",
            "author": "Jane Doe", "timestamp": timestamp, "version": 1, "statements": list(statements)}  # fmt: skip


def _statement(cve: str, status: str, product: dict[str, object], **extra: object) -> dict[str, object]:
    statement: dict[str, object] = {"vulnerability": {"name": cve}, "products": [product], "status": status}
    if status == "not_affected":
        statement["justification"] = "vulnerable_code_not_in_execute_path"
    if status == "affected":
        statement["action_statement"] = "upgrade"
    return statement | extra


def test_node_document_duplicate_is_rejected_with_the_schema_error() -> None:
    with pytest.raises(InputError) as caught:
        load_vex(NODE_VEX)
    message = caught.value.diagnostic()
    assert "statements" in message and "uniqueItems" in message
    # The two statements named are really identical.
    data = json.loads(NODE_VEX.read_text())
    first, second = (int(n) for n in message.split("items ")[1].split(" are")[0].split(" and "))
    assert data["statements"][first] == data["statements"][second]


def test_node_document_deduplicated_applies_by_package_purl() -> None:
    data = json.loads(NODE_VEX.read_text())
    unique = []
    for statement in data["statements"]:
        if statement not in unique:
            unique.append(statement)
    data["statements"] = unique
    document = parse_openvex(data, "node")
    assert len(document.statements) == len(data["statements"])
    target = next(s for s in unique if s["status"] == "fixed")
    product = target["products"][0]["@id"]
    cve = target["vulnerability"]["name"]
    named = _finding(cve, product, "node")
    other_version = _finding(cve, product.rsplit("@", 1)[0] + "@v0.0.1", "node")
    other_cve = _finding("CVE-1900-0001", product, "node")
    applied = apply_vex(_result(named, other_version, other_cve), [document])
    assert [f.package.purl for f in applied.suppressed] == [product]
    assert (
        applied.suppressed[0].suppression is not None
        and applied.suppressed[0].suppression.author == "Node.js Security WG"
    )
    assert {f.package.purl for f in applied.findings} == {other_version.package.purl, product}


@pytest.mark.parametrize(
    "product",
    [
        {"@id": DIGEST},
        {"@id": f"pkg:oci/python@{DIGEST.replace(':', '%3A')}"},  # without repository_url: any repository
        {"@id": ROOT},
        {"@id": "pkg:oci/python?tag=3.11"},
        {"@id": "registry.example/bastion/python:3.11"},
        {"@id": "x", "hashes": {"sha-256": DIGEST.removeprefix("sha256:")}},
    ],
)
def test_image_product_forms_match(product: dict[str, object]) -> None:
    finding = _finding("CVE-2021-3572", "pkg:pypi/pip@21.0")
    document = parse_openvex(_doc(_statement("CVE-2021-3572", "not_affected", product)), "doc")
    assert len(apply_vex(_result(finding), [document]).suppressed) == 1


@pytest.mark.parametrize(
    "product",
    [
        {"@id": "sha256:" + "cd" * 32},
        {"@id": f"pkg:oci/python@{DIGEST.replace(':', '%3A')}?repository_url=elsewhere.example/python"},
        {"@id": "pkg:oci/python?tag=3.12"},
        {"@id": "pkg:oci/node@" + DIGEST.replace(":", "%3A")},
    ],
)
def test_other_images_do_not_match(product: dict[str, object]) -> None:
    finding = _finding("CVE-2021-3572", "pkg:pypi/pip@21.0")
    document = parse_openvex(_doc(_statement("CVE-2021-3572", "not_affected", product)), "doc")
    assert apply_vex(_result(finding), [document]).suppressed == []


def test_subcomponents_and_precedence() -> None:
    pip = _finding("CVE-2021-3572", "pkg:pypi/pip@21.0")
    wheel = _finding("CVE-2021-3572", "pkg:pypi/wheel@0.30", "wheel")
    scoped = {"@id": DIGEST, "subcomponents": [{"@id": "pkg:pypi/pip"}]}
    early = _doc(_statement("CVE-2021-3572", "not_affected", scoped), timestamp="2024-01-01T00:00:00Z")
    late = _doc(_statement("CVE-2021-3572", "affected", scoped), timestamp="2024-06-01T00:00:00Z")
    result = apply_vex(_result(pip, wheel), [parse_openvex(early, "a")])
    assert [f.package.name for f in result.suppressed] == ["pip"]  # the subcomponent only
    # The latest statement wins, whatever the order of the documents.
    for order in ([early, late], [late, early]):
        applied = apply_vex(_result(pip), [parse_openvex(d, str(i), index=i) for i, d in enumerate(order)])
        assert applied.suppressed == [] and applied.findings[0].vex_status == "affected"
        assert applied.findings[0].note == "upgrade"
    # A statement's own timestamp beats its document's.
    restated = _doc(_statement("CVE-2021-3572", "fixed", scoped, timestamp="2025-01-01T00:00:00Z"))
    assert (
        len(apply_vex(_result(pip), [parse_openvex(late, "l"), parse_openvex(restated, "r")]).suppressed) == 1
    )


def test_generated_document_validates_and_says_the_right_things(tmp_path: Path) -> None:
    from bastion.vuln import import_paths, open_database
    from tests.vuln.helpers import tracker_release, write_tracker

    feed = write_tracker(tmp_path / "t.json", {
        "openssl": {"CVE-2000-0001": tracker_release("resolved", fixed_version="3.0.13-1"),
                    "CVE-2000-0002": tracker_release("resolved", fixed_version="3.0.9-1"),
                    "CVE-2000-0003": tracker_release("open", nodsa="Minor issue", nodsa_reason=""),
                    "CVE-2000-0004": tracker_release("open", urgency="not yet assigned")},
        "linux": {"CVE-2000-0005": tracker_release("open", urgency="low")},
    })  # fmt: skip
    database = open_database(tmp_path)
    import_paths(database, [feed])
    scanned = sbom(
        deb("libssl3", "3.0.11-1", "openssl"),
        deb("linux-libc-dev", "6.1.90-1", "linux"),
        root=ROOT,
        digest=DIGEST,
    )
    result = match_sbom(scanned, database)
    people = [AuthoredStatement("CVE-2000-0004", VexStatus.NOT_AFFECTED, "Jane Doe <jane@example.invalid>",
                                justification="vulnerable_code_not_in_execute_path", packages=("pkg:deb/debian/libssl3",))]  # fmt: skip
    document = generate_vex(result, timestamp="2024-01-01T00:00:00Z", statements=people)
    assert document is not None
    schema = json.loads(OPENVEX_SCHEMA.read_text())
    assert list(Draft202012Validator(schema).iter_errors(document)) == []
    status = {s["vulnerability"]["name"]: s for s in document["statements"]}
    assert (
        status["CVE-2000-0001"]["status"] == "affected"
        and "3.0.13-1" in status["CVE-2000-0001"]["action_statement"]
    )
    assert status["CVE-2000-0002"]["status"] == "fixed"
    assert (
        status["CVE-2000-0003"]["status"] == "affected"
        and "no-dsa" in status["CVE-2000-0003"]["action_statement"]
    )
    assert (
        status["CVE-2000-0004"]["status"] == "not_affected"
        and "Jane Doe" in status["CVE-2000-0004"]["status_notes"]
    )
    assert status["CVE-2000-0005"]["status"] == "not_affected"
    assert status["CVE-2000-0005"]["justification"] == "component_not_present"  # no kernel image in it
    assert status["CVE-2000-0001"]["products"][0]["subcomponents"] == [{"@id": scanned.packages[0].purl}]
    # Applied back to the same scan, the generated document suppresses exactly the not_affected ones.
    applied = apply_vex(result, [parse_openvex(document, "generated")])
    assert sorted(f.id for f in applied.suppressed) == ["CVE-2000-0004", "CVE-2000-0005"]
    # With a kernel image in the image, kernel CVEs are not declared not_affected.
    kernel = sbom(
        *scanned.packages, deb("linux-image-6.1.0-21-amd64", "6.1.90-1", "linux"), root=ROOT, digest=DIGEST
    )
    again = generate_vex(match_sbom(kernel, database), timestamp="2024-01-01T00:00:00Z")
    assert again is not None
    assert {s["vulnerability"]["name"]: s["status"] for s in again["statements"]}[
        "CVE-2000-0005"
    ] != "not_affected"


def test_cyclonedx_vex_round_trip(tmp_path: Path) -> None:
    pip = _finding("CVE-2021-3572", "pkg:pypi/pip@21.0")
    kept = _finding("CVE-2023-5752", "pkg:pypi/pip@21.0")
    suppressed = dataclasses.replace(
        apply_vex(
            _result(pip),
            [parse_openvex(_doc(_statement("CVE-2021-3572", "not_affected", {"@id": DIGEST})), "d")],
        ),
        findings=[kept],
    )
    path = tmp_path / "vex.cdx.json"
    path.write_bytes(to_cyclonedx_vex(suppressed))  # validated against CycloneDX 1.6 inside
    document = load_vex(path)
    statuses = {s.vulnerability: s.status for s in document.statements}
    assert statuses == {"CVE-2021-3572": VexStatus.NOT_AFFECTED, "CVE-2023-5752": VexStatus.AFFECTED}
    again = apply_vex(_result(pip, kept), [document])
    assert [f.id for f in again.suppressed] == ["CVE-2021-3572"]
    assert again.suppressed[0].suppression is not None
    assert datetime.fromisoformat(
        again.suppressed[0].suppression.timestamp.replace("Z", "+00:00")
    ) <= datetime.now(UTC)


def test_invalid_documents(tmp_path: Path) -> None:
    bad = _doc(_statement("CVE-1", "not_affected", {"@id": DIGEST}))
    del bad["statements"][0]["justification"]  # type: ignore[index]
    with pytest.raises(InputError, match="invalid OpenVEX document"):
        parse_openvex(bad, "bad")
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="neither an OpenVEX"):
        load_vex(path)
