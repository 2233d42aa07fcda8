"""The linear SBOM validators (``_spdxcheck``, ``_cdxcheck``) against the libraries' own validators,
kept as the reference: spdx-tools' ``validate_full_spdx_document`` and cyclonedx-python-lib's
``JsonStrictValidator`` (jsonschema over the strict 1.6 schema). On a 320-package document, on broken
ones (duplicate ids, dangling relationships, unknown or misused licences, files in a package that says it
has none, duplicate CycloneDX components, dependencies and refs) and on generated ones, both must find
the same problems: the very same messages for SPDX, the same errors for CycloneDX."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.annotation import Annotation, AnnotationType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
from spdx_tools.spdx.model.file import File
from spdx_tools.spdx.model.package import Package as SpdxPackage
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.snippet import Snippet
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.sbom.test_spdx import sample_sbom

from bastion.sbom import License, Package, PackageType, Sbom, SbomFile, to_cyclonedx
from bastion.sbom._cdxcheck import _LinearDraft7, cyclonedx_schema_errors
from bastion.sbom._spdx import _document
from bastion.sbom._spdxcheck import validate_spdx_document

NAMESPACE = "https://bastion.invalid/spdx/test/1"


def large_sbom(count: int = 320) -> Sbom:
    """``count`` Debian packages depending on their neighbours, with SPDX ids, LicenseRefs with text
    (extracted licensing info), expressions, and files Bastion wrote with and without SHA1."""
    base = sample_sbom()
    packages = []
    for index in range(count):
        licences = [
            [License("MIT")],
            [License("GPL-2.0-or-later WITH Classpath-exception-2.0")],
            [License(f"LicenseRef-custom-{index}", f"Licence text {index}.", f"custom {index}")],
            [License("Apache-2.0"), License("BSD-3-Clause OR MIT")],
        ]
        purl = f"pkg:deb/debian/lib{index}@1.{index}-1?arch=amd64&distro=debian-12"
        packages.append(
            Package(
                PackageType.DEB, f"lib{index}", f"1.{index}-1", purl, architecture="amd64",
                source_name=f"src{index // 3}", licenses=licences[index % len(licences)],
                depends=[f"pkg:deb/debian/lib{d}@1.{d}-1?arch=amd64&distro=debian-12" for d in (index - 1, index - 7) if d >= 0],
                supplier="Debian Team <team@lists.debian.org>", sha256=f"{index:064x}",
            )
        )  # fmt: skip
    files = [SbomFile(f"/etc/file{i}", f"{i:064x}", "written by bastion", sha1=f"{i:040x}" if i % 2 else None)
             for i in range(40)]  # fmt: skip
    return Sbom(
        name="bastion/large:3.11", root_purl=base.root_purl, platform="linux/amd64",
        manifest_digest=base.manifest_digest, packages=packages, created=base.created, tool_version="0.1.0",
        distro="debian-12", files=files,
    )  # fmt: skip


def spdx_agrees(document: Document) -> list[str]:
    """Assert the linear validator and spdx-tools give the same messages; return them."""
    linear = validate_spdx_document(document)
    reference = validate_full_spdx_document(document, "SPDX-2.3")
    assert linear == reference
    return [message.validation_message for message in linear]


def test_spdx_valid_large_document_agrees() -> None:
    document = _document(large_sbom(), NAMESPACE)
    assert len(document.packages) > 300
    assert spdx_agrees(document) == []


def _file_in_image(document: Document) -> None:
    # A package whose files are not analysed may contain no File (spdx-tools' package rule).
    document.relationships.append(
        Relationship("SPDXRef-Image", RelationshipType.CONTAINS, document.files[0].spdx_id)
    )
    document.relationships.append(
        Relationship(document.files[1].spdx_id, RelationshipType.CONTAINED_BY, document.packages[3].spdx_id)
    )


def _annotation_and_snippet(document: Document) -> None:
    annotator = Actor(ActorType.PERSON, "Someone")
    when = document.creation_info.created
    document.annotations.append(Annotation("SPDXRef-ghost", AnnotationType.REVIEW, annotator, when, "x"))
    document.annotations.append(
        Annotation(document.packages[2].spdx_id, AnnotationType.OTHER, annotator, when, "y")
    )
    document.snippets.append(Snippet("SPDXRef-snippet", document.packages[1].spdx_id, (1, 2)))  # not a file
    document.snippets.append(Snippet("SPDXRef-snippet2", document.files[0].spdx_id, (1, 2)))


BROKEN: dict[str, Callable[[Document], object]] = {
    "duplicate package id": lambda d: setattr(d.packages[5], "spdx_id", d.packages[6].spdx_id),
    "duplicate file and package id": lambda d: setattr(d.files[0], "spdx_id", d.packages[9].spdx_id),
    "dangling relationship target": lambda d: d.relationships.append(
        Relationship(d.packages[4].spdx_id, RelationshipType.DEPENDS_ON, "SPDXRef-nowhere")
    ),
    "dangling relationship origin": lambda d: d.relationships.append(
        Relationship("SPDXRef-gone", RelationshipType.DEPENDS_ON, d.packages[4].spdx_id)
    ),
    "unknown external document": lambda d: d.relationships.append(
        Relationship("DocumentRef-other:SPDXRef-x", RelationshipType.DEPENDS_ON, d.packages[4].spdx_id)
    ),
    "malformed id": lambda d: setattr(d.packages[7], "spdx_id", "SPDXRef-bad_id"),
    "no DESCRIBES": lambda d: d.relationships.pop(0),
    "unknown LicenseRef": lambda d: setattr(
        d.packages[8], "license_declared", spdx_licensing.parse("LicenseRef-missing AND MIT")
    ),
    "exception used as a licence": lambda d: setattr(
        d.packages[8], "license_concluded", spdx_licensing.parse("Classpath-exception-2.0")
    ),
    "removed extracted text": lambda d: d.extracted_licensing_info.pop(0),
    "extracted licence without text": lambda d: setattr(d.extracted_licensing_info[1], "extracted_text", ""),
    "files in a package with files_analyzed false": _file_in_image,
    "file without SHA1": lambda d: setattr(
        d.files[0], "checksums", [Checksum(ChecksumAlgorithm.SHA256, "a" * 64)]
    ),
    "annotations and snippets": _annotation_and_snippet,
    "wrong version": lambda d: setattr(d.creation_info, "spdx_version", "SPDX-2.2"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_spdx_broken_documents_agree(broken: str) -> None:
    # 40 packages: the reference validator is quadratic (the 320-package one is checked valid above).
    document = _document(large_sbom(40), NAMESPACE)
    BROKEN[broken](document)
    assert spdx_agrees(document) != []


# Small generated documents: a few ids (so duplicates happen), relationships among them and ids that
# do not exist, files and packages, licences known, extracted and unknown.
_IDS = ["SPDXRef-a", "SPDXRef-b", "SPDXRef-c", "SPDXRef-d"]
_LICENCES = [
    "MIT",
    "LicenseRef-x",
    "LicenseRef-y",
    "GPL-2.0-only WITH Classpath-exception-2.0",
    "MIT AND LicenseRef-y",
]


_ENDS = st.sampled_from([*_IDS, "SPDXRef-DOCUMENT", "SPDXRef-ghost"])
_KINDS = st.sampled_from([RelationshipType.CONTAINS, RelationshipType.CONTAINED_BY, RelationshipType.DESCRIBES,
                          RelationshipType.DEPENDS_ON, RelationshipType.DESCRIBED_BY])  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    elements=st.lists(
        st.tuples(st.sampled_from(_IDS), st.sampled_from(_LICENCES), st.booleans()), max_size=6
    ),
    relationships=st.lists(st.tuples(_ENDS, _KINDS, _ENDS), max_size=8),
    extracted=st.lists(st.sampled_from(["LicenseRef-x", "LicenseRef-y"]), max_size=3),
)
def test_spdx_generated_documents_agree(
    elements: list[tuple[str, str, bool]],
    relationships: list[tuple[str, RelationshipType, str]],
    extracted: list[str],
) -> None:
    # Made here, not in a strategy: spdx-tools' type checks (beartype) use the random module.
    creation = CreationInfo("SPDX-2.3", "SPDXRef-DOCUMENT", "generated", NAMESPACE,
                            [Actor(ActorType.TOOL, "test")], datetime(2026, 1, 1))  # fmt: skip
    packages, files = [], []
    for spdx_id, licence, is_package in elements:
        expression = spdx_licensing.parse(licence)
        if is_package:
            packages.append(
                SpdxPackage(
                    spdx_id, "p", SpdxNoAssertion(), files_analyzed=False, license_declared=expression
                )
            )
        else:
            files.append(File("./f", spdx_id, [Checksum(ChecksumAlgorithm.SHA1, "a" * 40)], license_concluded=expression))  # fmt: skip
    document = Document(
        creation, packages, files,
        relationships=[Relationship(*relationship) for relationship in relationships],
        extracted_licensing_info=[ExtractedLicensingInfo(key, "text") for key in extracted],
    )  # fmt: skip
    spdx_agrees(document)


# CycloneDX


def cyclonedx_agrees(document: dict[str, Any]) -> list[str]:
    """Assert the linear schema check and JsonStrictValidator find the same errors; return them."""
    linear = sorted((error.json_path, error.message) for error in cyclonedx_schema_errors(document))
    found = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document), all_errors=True)
    reference = sorted((error.data.json_path, error.data.message) for error in found or [])
    assert linear == reference
    return [message for _, message in linear]


@pytest.fixture(scope="module")
def large_cyclonedx() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(to_cyclonedx(large_sbom()))
    return document


@pytest.fixture(scope="module")
def small_cyclonedx() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(to_cyclonedx(large_sbom(40)))
    return document


def test_cyclonedx_valid_large_document_agrees(large_cyclonedx: dict[str, Any]) -> None:
    assert len(large_cyclonedx["components"]) > 300
    assert cyclonedx_agrees(large_cyclonedx) == []
    duplicated = copy.deepcopy(large_cyclonedx)
    duplicated["components"].append(copy.deepcopy(duplicated["components"][150]))
    assert "has non-unique elements" in cyclonedx_agrees(duplicated)[0]


def _with(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def changed(document: dict[str, Any]) -> dict[str, Any]:
        copied = copy.deepcopy(document)
        change(copied)
        return copied

    return changed


def _component(document: dict[str, Any], key: str) -> dict[str, Any]:
    """The first component that has ``key`` (files come first, and have no licences)."""
    found: dict[str, Any] = next(c for c in document["components"] if key in c)
    return found


def _dependency(document: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = max(document["dependencies"], key=lambda d: len(d.get("dependsOn", [])))
    return found


CYCLONEDX_BROKEN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "duplicate component": _with(lambda d: d["components"].insert(20, copy.deepcopy(d["components"][3]))),
    "duplicate dependency": _with(lambda d: d["dependencies"].append(copy.deepcopy(d["dependencies"][5]))),
    "duplicate ref in dependsOn": _with(lambda d: _dependency(d)["dependsOn"].append(_dependency(d)["dependsOn"][7])),
    "unknown licence id": _with(lambda d: _component(d, "licenses")["licenses"].__setitem__(0, {"license": {"id": "Not-A-Licence"}})),
    "licence list and expression together": _with(lambda d: _component(d, "licenses")["licenses"].append({"expression": "MIT OR 0BSD"})),
    "bad component type": _with(lambda d: d["components"][1].__setitem__("type", "gadget")),
    "unknown field (strict schema)": _with(lambda d: d["components"][1].__setitem__("colour", "red")),
    "bad timestamp": _with(lambda d: d["metadata"].__setitem__("timestamp", "yesterday")),
}  # fmt: skip


@pytest.mark.parametrize("broken", sorted(CYCLONEDX_BROKEN))
def test_cyclonedx_broken_documents_agree(broken: str, small_cyclonedx: dict[str, Any]) -> None:
    assert cyclonedx_agrees(CYCLONEDX_BROKEN[broken](small_cyclonedx)) != []


SCHEMA_ALLOWS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "one bom-ref on two different components": _with(lambda d: d["components"][4].__setitem__("bom-ref", d["components"][5]["bom-ref"])),
    "duplicate property": _with(lambda d: _component(d, "properties")["properties"].append(dict(_component(d, "properties")["properties"][0]))),
    "duplicate hash": _with(lambda d: _component(d, "hashes")["hashes"].append(dict(_component(d, "hashes")["hashes"][0]))),
}  # fmt: skip


@pytest.mark.parametrize("allowed", sorted(SCHEMA_ALLOWS))
def test_cyclonedx_what_the_schema_allows_agrees(allowed: str, small_cyclonedx: dict[str, Any]) -> None:
    """CycloneDX says a bom-ref is unique in a BOM, but its JSON schema cannot say so, and it sets no
    uniqueItems on properties or hashes: both validators accept these (a limit of the schema, which
    the linear check keeps, not loosens)."""
    assert cyclonedx_agrees(SCHEMA_ALLOWS[allowed](small_cyclonedx)) == []


# uniqueItems and enum as jsonschema means them: true is not 1, 1 is 1.0, objects and arrays compare
# member by member, whatever the key order.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 2.5]) | st.sampled_from(["", "a", "1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b"]), children, max_size=2),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=6), st.lists(json_values, min_size=9, max_size=12), json_values)
def test_unique_items_and_enum_agree_with_jsonschema(
    items: list[Any], enum: list[Any], instance: Any
) -> None:
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"uniqueItems": True}, items),
        ({"uniqueItems": True}, [*items, *items[:1]]),
        ({"enum": enum}, instance),
        ({"enum": enum}, enum[len(items) % len(enum)]),
        ({"items": {"enum": enum}}, items),
    ]
    for schema, value in cases:
        linear = [error.message for error in _LinearDraft7(schema).iter_errors(value)]
        assert linear == [error.message for error in Draft7Validator(schema).iter_errors(value)]
