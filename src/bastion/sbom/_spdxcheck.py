"""SPDX 2.3 validation in linear time, as strict as spdx-tools' ``validate_full_spdx_document``.

spdx-tools checks that a referenced id exists by building the list of every id in the document again
for each reference, and finds a package's relationships and a licence's extracted text by scanning the
whole document for each package: quadratic in the number of elements (about 11 s of a 317-package
``bastion sbom``, docs/benchmarks.md). Here each element goes to spdx-tools' own validator for it
(unchanged, not patched) with a document that holds only what that validator looks up for it: the
elements its ids name, its ``CONTAINS`` / ``CONTAINED_BY`` relationships, the extracted licences its
expressions name. Those are found in dicts made once, so the same rules give the same messages, in the
same order, in linear time. ``tests/sbom/test_spdx_validation.py`` keeps the full validator as the
reference, on valid and broken documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from license_expression import LicenseExpression
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.model.document import Document
from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
from spdx_tools.spdx.model.file import File
from spdx_tools.spdx.model.package import Package
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.relationship_filters import filter_by_type_and_origin, filter_by_type_and_target
from spdx_tools.spdx.model.snippet import Snippet
from spdx_tools.spdx.validation.annotation_validator import validate_annotation
from spdx_tools.spdx.validation.creation_info_validator import validate_creation_info
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.validation.extracted_licensing_info_validator import validate_extracted_licensing_infos
from spdx_tools.spdx.validation.file_validator import validate_file_within_document
from spdx_tools.spdx.validation.package_validator import validate_package_within_document
from spdx_tools.spdx.validation.relationship_validator import validate_relationship
from spdx_tools.spdx.validation.snippet_validator import validate_snippet_within_document
from spdx_tools.spdx.validation.spdx_id_validators import get_list_of_all_spdx_ids
from spdx_tools.spdx.validation.validation_message import (
    SpdxElementType,
    ValidationContext,
    ValidationMessage,
)

__all__ = ["SPDX_VERSION", "validate_spdx_document"]

SPDX_VERSION = "SPDX-2.3"

# spdx-tools is untyped (Any): an element is a Package, File or Snippet, a licence a LicenseExpression,
# SpdxNoAssertion, SpdxNone or None.
_Element = Any


class _Index:
    """The document's lookups, each made once: elements by id, extracted licences by id, and the
    relationships spdx-tools' package check looks for (``CONTAINS`` by origin, ``CONTAINED_BY`` by
    target)."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.elements: dict[str, list[_Element]] = defaultdict(list)
        # spdx-tools' order (get_contained_spdx_elements): packages, files, snippets; the view keeps it.
        element: _Element
        for element in [*document.packages, *document.files, *document.snippets]:
            self.elements[element.spdx_id].append(element)
        self.licences: dict[str | None, list[ExtractedLicensingInfo]] = defaultdict(list)
        for info in document.extracted_licensing_info:
            self.licences[info.license_id].append(info)
        self.contains: dict[str, list[Relationship]] = defaultdict(list)
        self.contained_by: dict[str, list[Relationship]] = defaultdict(list)
        for relationship in document.relationships:
            if relationship.relationship_type == RelationshipType.CONTAINS:
                self.contains[relationship.spdx_element_id].append(relationship)
            elif relationship.relationship_type == RelationshipType.CONTAINED_BY and isinstance(
                relationship.related_spdx_element_id, str
            ):
                self.contained_by[relationship.related_spdx_element_id].append(relationship)
        self.empty = Document(creation_info=document.creation_info)

    def is_file(self, spdx_id: object) -> bool:
        """Whether spdx-tools' get_element_type_from_spdx_id gives File (packages come first)."""
        found = self.elements.get(spdx_id) if isinstance(spdx_id, str) else None
        return bool(found) and isinstance(found[0], File) if found else False

    def view(
        self,
        ids: Iterable[str] = (),
        licences: Iterable[object] = (),
        relationships: list[Relationship] | None = None,
    ) -> Document:
        """A document with the creation info, the elements named by ``ids``, the extracted licences
        ``licences`` name and ``relationships``: all that spdx-tools' validator of one element reads."""
        found = [e for spdx_id in dict.fromkeys(ids) for e in self.elements.get(spdx_id, ())]
        keys = {key for expression in licences for key in _licence_keys(expression)}
        if not found and not keys and not relationships:
            return self.empty  # most files: nothing to look up (and a Document costs ~60 µs to make)
        return Document(
            creation_info=self.document.creation_info,
            packages=[e for e in found if isinstance(e, Package)],
            files=[e for e in found if isinstance(e, File)],
            snippets=[e for e in found if isinstance(e, Snippet)],
            relationships=relationships or [],
            extracted_licensing_info=[i for key in sorted(keys) for i in self.licences.get(key, ())],
        )


def _licence_keys(expression: object) -> list[str]:
    """The licence and exception keys an expression names (what spdx-tools compares with the extracted
    licences' ids)."""
    if not isinstance(expression, LicenseExpression):
        return []
    return list(spdx_licensing.license_keys(expression))


def _package(index: _Index, package: Package) -> list[ValidationMessage]:
    # spdx-tools looks for CONTAINS relationships to a File and CONTAINED_BY from a File (an element's
    # type as get_element_type_from_spdx_id gives it: a package first); only those, and those files, go
    # into the view (the image's CONTAINS of every package would make the check quadratic again).
    contains = [
        r for r in index.contains.get(package.spdx_id, []) if index.is_file(r.related_spdx_element_id)
    ]
    contained_by = [
        r for r in index.contained_by.get(package.spdx_id, []) if index.is_file(r.spdx_element_id)
    ]
    related = [
        *(r.related_spdx_element_id for r in contains if isinstance(r.related_spdx_element_id, str)),
        *(r.spdx_element_id for r in contained_by),
    ]
    licences = [package.license_concluded, package.license_declared, *(package.license_info_from_files or [])]
    view = index.view([package.spdx_id, *related], licences, [*contains, *contained_by])
    return validate_package_within_document(package, SPDX_VERSION, view)


def _file(index: _Index, file: File) -> list[ValidationMessage]:
    view = index.view(licences=[file.license_concluded, *file.license_info_in_file])
    return validate_file_within_document(file, SPDX_VERSION, view)


def _snippet(index: _Index, snippet: Snippet) -> list[ValidationMessage]:
    licences = [snippet.license_concluded, *snippet.license_info_in_snippet]
    view = index.view([snippet.file_spdx_id], licences)
    return validate_snippet_within_document(snippet, SPDX_VERSION, view)


def _relationship(index: _Index, relationship: Relationship) -> list[ValidationMessage]:
    ids = [relationship.spdx_element_id]
    if isinstance(relationship.related_spdx_element_id, str):
        ids.append(relationship.related_spdx_element_id)
    return validate_relationship(relationship, SPDX_VERSION, index.view(ids))


def validate_spdx_document(document: Document) -> list[ValidationMessage]:
    """What ``validate_full_spdx_document(document, "SPDX-2.3")`` returns, in linear time."""
    info = document.creation_info
    if info.spdx_version != SPDX_VERSION:
        # spdx-tools stops at the version check (nothing else is validated): as cheap there as here.
        return validate_full_spdx_document(document, SPDX_VERSION)
    index = _Index(document)
    messages: list[ValidationMessage] = [*validate_creation_info(info, SPDX_VERSION)]
    for package in document.packages:
        messages.extend(_package(index, package))
    for file in document.files:
        messages.extend(_file(index, file))
    for snippet in document.snippets:
        messages.extend(_snippet(index, snippet))
    for annotation in document.annotations:
        messages.extend(validate_annotation(annotation, index.view([annotation.spdx_id])))
    for relationship in document.relationships:
        messages.extend(_relationship(index, relationship))
    messages.extend(validate_extracted_licensing_infos(document.extracted_licensing_info))

    # spdx-tools' document rule: it DESCRIBES something, unless it holds one package and nothing else.
    document_id = info.spdx_id
    describes = filter_by_type_and_origin(document.relationships, RelationshipType.DESCRIBES, document_id)
    described_by = filter_by_type_and_target(
        document.relationships, RelationshipType.DESCRIBED_BY, document_id
    )
    single_package = len(document.packages) == 1 and not document.files and not document.snippets
    if not single_package and not describes + described_by:
        messages.append(
            ValidationMessage(
                f'there must be at least one relationship "{document_id} DESCRIBES ..." or "... DESCRIBED_BY '
                f'{document_id}" when there is not only a single package present',
                ValidationContext(spdx_id=document_id, element_type=SpdxElementType.DOCUMENT),
            )
        )
    # SPDX 2.3 clauses 7.2, 8.2, 9.1: an element's SPDX id is unique within its document.
    seen: set[str] = set()
    duplicated: set[str] = set()
    for spdx_id in get_list_of_all_spdx_ids(document):
        (duplicated if spdx_id in seen else seen).add(spdx_id)
    if duplicated:
        messages.append(
            ValidationMessage(
                f"every spdx_id must be unique within the document, but found the following duplicates: "
                f"{sorted(duplicated)}",
                ValidationContext(spdx_id=document_id, element_type=SpdxElementType.DOCUMENT),
            )
        )
    return messages
