"""CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/), built with cyclonedx-python-lib's model,
written by its ``JsonV1Dot6`` outputter and checked against the strict 1.6 JSON schema before it is
returned (as its ``JsonStrictValidator`` checks, in linear time: ``_cdxcheck``).

Deterministic: ``serialNumber`` is ``urn:uuid:`` + a UUIDv5 of the SBOM's content digest (the
:func:`~bastion.sbom._spdx.content_digest` the SPDX namespace uses), ``metadata.timestamp`` is the
image's created time, and the library orders components, dependencies and properties.

Properties: the CycloneDX property taxonomy has no namespace for Debian or image layers, so Bastion's
own are ``bastion:deb:source-name``, ``bastion:deb:source-version``, ``bastion:found-by``,
``bastion:origin`` and ``bastion:location:<n>:layer-digest`` / ``:layer-index`` (the n-th evidence
occurrence).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from email.utils import parseaddr

from cyclonedx.model import (
    AttachedText,
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence
from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

import bastion
from bastion.errors import InputError, InternalError
from bastion.identifiers import CYCLONEDX_SERIAL_BASE
from bastion.sbom._cdxcheck import cyclonedx_schema_errors
from bastion.sbom._licenses import checked_license, declared_expression, is_spdx_id
from bastion.sbom._model import Package, PackageType, Sbom, SbomFile
from bastion.sbom._spdx import content_digest

__all__ = ["SERIAL_NAMESPACE", "to_cyclonedx", "validate_cyclonedx"]

#: UUIDv5 namespace of serial numbers (itself the UUIDv5 of Bastion's URI under the URL namespace).
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CYCLONEDX_SERIAL_BASE)


def _purl(value: str, where: str) -> PackageURL:
    try:
        return PackageURL.from_string(value)
    except ValueError as error:
        raise InputError(f"invalid package URL {value!r}: {error}", where=where) from None


def _timestamp(sbom: Sbom) -> datetime:
    try:
        created = datetime.fromisoformat(sbom.created)
    except ValueError:
        raise InputError(f"SBOM created time {sbom.created!r} is not RFC 3339", where=sbom.name) from None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


# What CycloneDX's idn-email format accepts in practice: one @, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


def _supplier(text: str | None) -> OrganizationalEntity | None:
    if not text or not text.strip():
        return None
    name, mail = parseaddr(text)
    if not _EMAIL.fullmatch(mail):
        mail = ""  # parseaddr("Wes") gives ("", "Wes"): a name, not an address
    name = name or text.strip()
    contact = OrganizationalContact(name=name, email=mail) if mail else None
    return OrganizationalEntity(name=name, contacts=[contact] if contact else None)


def _licenses(package: Package) -> list[LicenseExpression | DisjunctiveLicense]:
    """A list of licences when each is one SPDX id or one ``LicenseRef-`` (whose text is attached);
    otherwise one expression. The 1.6 schema allows either a list of licences or a single expression,
    never both (``licenseChoice``)."""
    licences = sorted({item.expression: item for item in map(checked_license, package.licenses)}.values(),
                      key=lambda item: item.expression)  # fmt: skip
    if all(is_spdx_id(item.expression) or (item.expression.startswith("LicenseRef-") and " " not in item.expression)
           for item in licences):  # fmt: skip
        result: list[LicenseExpression | DisjunctiveLicense] = []
        for item in licences:
            if is_spdx_id(item.expression):
                result.append(DisjunctiveLicense(id=item.expression))
            else:
                text = AttachedText(content=item.text) if item.text else None
                result.append(DisjunctiveLicense(name=item.expression, text=text))
        return result
    expression = declared_expression(licences)
    return [LicenseExpression(expression)] if expression else []


def _hashes(sha256: str | None, sha1: str | None = None) -> list[HashType]:
    hashes = []
    if sha256:
        hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=sha256.removeprefix("sha256:")))
    if sha1:
        hashes.append(HashType(alg=HashAlgorithm.SHA_1, content=sha1))
    return hashes


def _references(package: Package) -> list[ExternalReference]:
    refs = []
    if package.download_location:
        refs.append(
            ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(package.download_location))
        )
    if package.homepage:
        refs.append(ExternalReference(type=ExternalReferenceType.WEBSITE, url=XsUri(package.homepage)))
    return refs


def _component(package: Package, ref: str) -> Component:
    properties = []
    if package.source_name:
        properties.append(Property(name="bastion:deb:source-name", value=package.source_name))
    if package.source_version:
        properties.append(Property(name="bastion:deb:source-version", value=package.source_version))
    if package.found_by:
        properties.append(Property(name="bastion:found-by", value=package.found_by))
    if package.origin:
        properties.append(Property(name="bastion:origin", value=package.origin))
    occurrences = []
    for index, location in enumerate(sorted(set(package.locations))):
        context = None
        if location.layer_digest is not None:
            properties.append(
                Property(name=f"bastion:location:{index}:layer-digest", value=location.layer_digest)
            )
            context = f"layer {location.layer_index} {location.layer_digest}"
        if location.layer_index is not None:
            properties.append(
                Property(name=f"bastion:location:{index}:layer-index", value=str(location.layer_index))
            )
        occurrences.append(Occurrence(location=location.path, additional_context=context))
    group = package.namespace
    if group and package.type == PackageType.NPM:
        group = f"@{group}"  # an npm scope is written with its "@", as npm names it
    return Component(
        type=ComponentType.LIBRARY,
        bom_ref=ref,
        name=package.name,
        version=package.version,
        group=group,
        description=package.description,
        supplier=_supplier(package.supplier),
        licenses=_licenses(package),
        hashes=_hashes(package.sha256),
        purl=_purl(package.purl, package.name),
        external_references=_references(package),
        properties=properties,
        evidence=ComponentEvidence(occurrences=occurrences) if occurrences else None,
    )


def _file_component(item: SbomFile) -> Component:
    return Component(
        type=ComponentType.FILE,
        bom_ref=f"file:{item.path}",
        name=item.path,
        hashes=_hashes(item.sha256, item.sha1),
        properties=[Property(name="bastion:origin", value=item.origin)],
    )


def _bom(sbom: Sbom) -> Bom:
    root_ref = (
        _purl(sbom.root_purl, sbom.name).to_string() if sbom.root_purl else f"bastion:directory:{sbom.name}"
    )
    root = Component(
        type=ComponentType.CONTAINER if sbom.root_purl else ComponentType.FILE,
        bom_ref=root_ref,
        name=sbom.name,
        version=sbom.manifest_digest,
        purl=_purl(sbom.root_purl, sbom.name) if sbom.root_purl else None,
        hashes=_hashes(sbom.manifest_digest),
        properties=[Property(name="bastion:platform", value=sbom.platform)] if sbom.platform else None,
    )
    tool = Component(
        type=ComponentType.APPLICATION, name="bastion", version=sbom.tool_version or bastion.__version__
    )
    metadata = BomMetaData(
        tools=ToolRepository(components=[tool]), component=root, timestamp=_timestamp(sbom)
    )
    components: list[Component] = []
    refs: dict[str, str] = {}
    used: set[str] = set()
    for package in sorted(sbom.packages, key=lambda item: (item.purl, item.name, item.version)):
        ref = _purl(package.purl, package.name).to_string()  # canonical, as in the component's purl
        while ref in used:  # the same purl twice (two locations): still one bom-ref each
            ref += "#dup"
        used.add(ref)
        refs.setdefault(package.ref, ref)
        components.append(_component(package, ref))
    components.extend(_file_component(item) for item in sorted(sbom.files, key=lambda item: item.path))
    dependencies = [
        Dependency(
            BomRef(root_ref), [Dependency(BomRef(component.bom_ref.value)) for component in components]
        )
    ]
    for package in sbom.packages:
        # Depends naming a package not in this SBOM are dropped: the schema wants refs that resolve.
        wanted = sorted({refs[dep] for dep in package.depends if dep in refs})
        dependencies.append(
            Dependency(BomRef(refs[package.ref]), [Dependency(BomRef(dep)) for dep in wanted])
        )
    serial = uuid.uuid5(SERIAL_NAMESPACE, content_digest(sbom))
    return Bom(serial_number=serial, metadata=metadata, components=components, dependencies=dependencies)


def validate_cyclonedx(document: str) -> None:
    """Raise InternalError listing the schema errors of a CycloneDX 1.6 JSON document (we never emit an
    invalid one: a failure here is a bug in the writer or in a cataloger's data)."""
    errors = cyclonedx_schema_errors(json.loads(document))
    if errors:
        listed = "; ".join(sorted(f"{error.json_path}: {error.message}" for error in errors))
        raise InternalError(f"CycloneDX document is invalid against the 1.6 schema: {listed}")


def to_cyclonedx(sbom: Sbom) -> bytes:
    """``sbom`` as CycloneDX 1.6 JSON, validated."""
    document = JsonV1Dot6(_bom(sbom)).output_as_string(indent=2)
    validate_cyclonedx(document)
    return document.encode() + b"\n"
