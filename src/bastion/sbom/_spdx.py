"""SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/), built with spdx-tools' model, validated with
its validators (as strictly as its full-document validator, in linear time: ``_spdxcheck``) and written
with its JSON writer.

Deterministic: the same :class:`Sbom` gives the same bytes. Every id is derived from content, never
random:

* ``documentNamespace`` is ``https://bastion.invalid/spdx/<name>/<digest>/<content>``: ``<name>`` the
  image name made URI-safe, ``<digest>`` the manifest digest (``sha256-<hex>``, ``directory`` for
  ``fs://``) and ``<content>`` the SHA256 of the SBOM's content (:func:`content_digest`), so a namespace
  names exactly one document (SPDX 2.3 clause 6.5: unique per document). ``bastion.invalid`` is a
  reserved name (RFC 2606) that never resolves: the namespace is an identifier, not a location.
* ``SPDXRef-Package-<name>-<12 hex of the purl's SHA256>``, ``SPDXRef-File-<path>-<12 hex>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from packageurl import PackageURL
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
from spdx_tools.spdx.model.file import File
from spdx_tools.spdx.model.package import ExternalPackageRef, ExternalPackageRefCategory, PackagePurpose
from spdx_tools.spdx.model.package import Package as SpdxPackage
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.validation.uri_validators import validate_download_location, validate_uri
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

import bastion
from bastion.errors import InputError, InternalError
from bastion.identifiers import SPDX_NAMESPACE_BASE
from bastion.sbom._licenses import declared_expression, extracted_licenses
from bastion.sbom._model import Package, PackageType, Sbom, SbomFile
from bastion.sbom._spdxcheck import validate_spdx_document

__all__ = ["NAMESPACE_BASE", "canonical_purl", "content_digest", "to_spdx", "validate_spdx"]

NAMESPACE_BASE = SPDX_NAMESPACE_BASE
_ROOT_ID = "SPDXRef-Image"
_HEX = re.compile(r"^[0-9a-f]+$")
# A maintainer is an organisation rather than a person when it names a group (Debian teams and lists).
_ORGANISATION = re.compile(
    r"\b(team|maintainers|project|group|developers|foundation|inc|ltd|llc|gmbh|corporation)\b", re.IGNORECASE
)


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` gives, without its deep copy of every leaf (half the cost of
    :func:`content_digest`); the JSON of both is the same."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def content_digest(sbom: Sbom) -> str:
    """SHA256 (hex) of the SBOM's content in a canonical JSON form (package and file order ignored):
    the basis of every derived id."""

    def dump(value: object) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

    content = _plain(sbom)
    # The order in which catalogers listed packages and files is not content: the documents sort them.
    content["packages"] = sorted(map(dump, content["packages"]))
    content["files"] = sorted(map(dump, content["files"]))
    return hashlib.sha256(dump(content).encode()).hexdigest()


def _idstring(text: str) -> str:
    """SPDX ids are ``SPDXRef-[A-Za-z0-9.-]+`` (clause 7.2)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:60] or "x"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _namespace(sbom: Sbom, digest: str) -> str:
    segment = re.sub(r"[^A-Za-z0-9._-]+", "-", sbom.name).strip("-") or "sbom"
    manifest = sbom.manifest_digest.replace(":", "-") if sbom.manifest_digest else "directory"
    return f"{NAMESPACE_BASE}{segment}/{manifest}/{digest}"


def _created(sbom: Sbom) -> datetime:
    try:
        created = datetime.fromisoformat(sbom.created)
    except ValueError:
        raise InputError(f"SBOM created time {sbom.created!r} is not RFC 3339", where=sbom.name) from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.astimezone(UTC).replace(tzinfo=None, microsecond=0)


_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


def _actor(supplier: str | None) -> Actor | SpdxNoAssertion:
    """``Name <mail>`` -> a Person or Organization (clause 7.5); NOASSERTION when absent."""
    if not supplier or not supplier.strip():
        return SpdxNoAssertion()
    name, mail = parseaddr(supplier)
    if not name:
        name, mail = (supplier.strip(), "") if "@" not in supplier else (mail, mail)
    if mail and not _EMAIL.fullmatch(mail):
        mail = ""  # parseaddr("Wes") gives ("", "Wes"): a name, not an address
    kind = ActorType.ORGANIZATION if _ORGANISATION.search(name) or "lists." in mail else ActorType.PERSON
    return Actor(kind, name.strip(), mail or None)


def _uri_or_none(value: str | None, *, download: bool = False) -> str | None:
    if not value:
        return None
    problems = validate_download_location(value) if download else validate_uri(value)
    return None if problems else value


def _checksums(sha256: str | None, sha1: str | None = None) -> list[Checksum]:
    sums = []
    if sha1 and _HEX.match(sha1):
        sums.append(Checksum(ChecksumAlgorithm.SHA1, sha1))
    if sha256 and _HEX.match(sha256.removeprefix("sha256:")):
        sums.append(Checksum(ChecksumAlgorithm.SHA256, sha256.removeprefix("sha256:")))
    return sums


def canonical_purl(package: Package) -> str:
    """The package's purl as packageurl-python writes it (``+`` in a version percent-encoded), so that
    both formats name a package identically whoever built the string."""
    try:
        return PackageURL.from_string(package.purl).to_string()
    except ValueError as error:
        raise InputError(f"invalid package URL {package.purl!r}: {error}", where=package.name) from None


def _package(package: Package, spdx_id: str) -> SpdxPackage:
    declared = declared_expression(package.licenses)
    source = None
    if package.type == PackageType.DEB and package.source_name:
        source = f"built from source package {package.source_name} version {package.source_version or package.version}"
    return SpdxPackage(
        spdx_id=spdx_id,
        name=package.name,
        version=package.version or None,
        supplier=_actor(package.supplier),
        download_location=_uri_or_none(package.download_location, download=True) or SpdxNoAssertion(),
        files_analyzed=False,
        checksums=_checksums(package.sha256),
        homepage=_uri_or_none(package.homepage),
        source_info=source,
        license_concluded=SpdxNoAssertion(),
        license_declared=spdx_licensing.parse(declared) if declared else SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        description=package.description or None,
        external_references=[
            ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", canonical_purl(package))
        ],
        primary_package_purpose=PackagePurpose.CONTAINER
        if package.type == PackageType.OCI
        else PackagePurpose.LIBRARY,
    )


def _root(sbom: Sbom) -> SpdxPackage:
    refs = []
    if sbom.root_purl:
        purl = canonical_purl(Package(PackageType.OCI, sbom.name, "", sbom.root_purl))
        refs.append(ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl))
    digest = sbom.manifest_digest.removeprefix("sha256:") if sbom.manifest_digest else None
    return SpdxPackage(
        spdx_id=_ROOT_ID,
        name=sbom.name,
        version=sbom.manifest_digest,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        checksums=_checksums(digest),
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        external_references=refs,
        comment=f"platform {sbom.platform}" if sbom.platform else None,
        primary_package_purpose=PackagePurpose.CONTAINER if sbom.root_purl else PackagePurpose.OTHER,
    )


def _file_node(item: SbomFile, spdx_id: str) -> File | SpdxPackage:
    """A file Bastion wrote. SPDX 2.3 clause 8.4 requires SHA1 for a File: without one, the file is
    described as a package of purpose FILE (clause 7.24), which needs no SHA1."""
    name = "./" + item.path.lstrip("/")  # clause 8.1: a relative path, "./" prefixed
    if item.sha1:
        return File(
            name,
            spdx_id,
            _checksums(item.sha256, item.sha1),
            copyright_text=SpdxNoAssertion(),
            comment=item.origin,
        )
    return SpdxPackage(
        spdx_id=spdx_id,
        name=item.path,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        checksums=_checksums(item.sha256),
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        comment=item.origin,
        primary_package_purpose=PackagePurpose.FILE,
    )


def _document(sbom: Sbom, namespace: str) -> Document:
    version = sbom.tool_version or bastion.__version__
    creation = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=sbom.name,
        document_namespace=namespace,
        creators=[Actor(ActorType.TOOL, f"bastion-{version}")],
        created=_created(sbom),
    )
    packages = [_root(sbom)]
    files: list[File] = []
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, _ROOT_ID)]
    ids: dict[str, str] = {}
    used: set[str] = {_ROOT_ID}
    for package in sorted(sbom.packages, key=lambda item: (item.purl, item.name, item.version)):
        spdx_id = f"SPDXRef-Package-{_idstring(package.name)}-{_short_hash(package.purl)}"
        while spdx_id in used:  # the same purl twice (two locations): still one id each
            spdx_id += "-dup"
        used.add(spdx_id)
        ids.setdefault(package.ref, spdx_id)
        packages.append(_package(package, spdx_id))
        relationships.append(Relationship(_ROOT_ID, RelationshipType.CONTAINS, spdx_id))
    for package in sorted(sbom.packages, key=lambda item: (item.purl, item.name, item.version)):
        # Depends naming a package not in this SBOM are dropped: SPDX relationships must resolve.
        for ref in sorted({ids[dep] for dep in package.depends if dep in ids}):
            relationships.append(Relationship(ids[package.ref], RelationshipType.DEPENDS_ON, ref))
    for item in sorted(sbom.files, key=lambda item: item.path):
        spdx_id = f"SPDXRef-File-{_idstring(item.path)}-{_short_hash(item.path)}"
        node = _file_node(item, spdx_id)
        if isinstance(node, File):
            files.append(node)
        else:
            packages.append(node)
        # FILE_ADDED (clause 11.1: "A is a file that was added to B"), not CONTAINS: the image package
        # has filesAnalyzed false, and such a package must contain no files (clause 7.8).
        relationships.append(Relationship(spdx_id, RelationshipType.FILE_ADDED, _ROOT_ID))
    extracted = [
        ExtractedLicensingInfo(
            license_id=ref.license_id, extracted_text=ref.text, license_name=ref.name, comment=None
        )
        for ref in extracted_licenses(sbom.packages)
    ]
    return Document(
        creation_info=creation,
        packages=packages,
        files=files,
        relationships=relationships,
        extracted_licensing_info=extracted,
    )


def validate_spdx(document: Document) -> None:
    """Raise InternalError listing every message of spdx-tools' full validation, made in linear time
    (``_spdxcheck``; we never emit an invalid document: a failure here is a bug in the writer or in a
    cataloger's data)."""
    messages = validate_spdx_document(document)
    if messages:
        listed = "; ".join(sorted(message.validation_message for message in messages))
        raise InternalError(f"SPDX document {document.creation_info.name!r} is invalid: {listed}")


def to_spdx(sbom: Sbom) -> bytes:
    """``sbom`` as SPDX 2.3 JSON, validated."""
    document = _document(sbom, _namespace(sbom, content_digest(sbom)))
    validate_spdx(document)
    stream = io.StringIO()
    # Validated just above; and nothing to deduplicate: every package, file and relationship is made
    # once (ids are unique, depends come from a set). spdx-tools' deduplication deep-copies the whole
    # document, which was a third of this function's time.
    write_document_to_stream(document, stream, validate=False, drop_duplicates=False)
    return stream.getvalue().encode() + b"\n"
