"""SPDX 2.3 JSON: the document parses and validates with spdx-tools (independently of the writer's own
check), is byte-for-byte deterministic, and carries the fields consumers read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.parser.json.json_parser import parse_from_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.sbom.test_licenses import copyrights  # noqa: F401  (a fixture used below)

from bastion.errors import InputError, InternalError
from bastion.sbom import License, Location, Package, PackageType, Sbom, SbomFile, parse_copyright, to_spdx
from bastion.sbom._spdx import NAMESPACE_BASE, _document, _namespace, content_digest, validate_spdx

IMAGE_DIGEST = "sha256:" + "c" * 64
DEB_TRICKY = "pkg:deb/debian/libfoo@1%3A2.3%2Bdfsg-1~deb12u1?arch=amd64&distro=debian-12"
# The same purl as packageurl-python writes it (both writers use that form): ':' bare, '+' encoded.
DEB_TRICKY_CANONICAL = "pkg:deb/debian/libfoo@1:2.3%2Bdfsg-1~deb12u1?arch=amd64&distro=debian-12"


def sample_sbom() -> Sbom:
    """A hand-made SBOM with the awkward cases: epochs and '+' in Debian versions, an npm scope, a maven
    group, LicenseRefs with text (one id with two different texts), a licence string that is not SPDX,
    dependencies, layer locations and files Bastion wrote (with and without SHA1)."""
    zlib = Package(
        PackageType.DEB, "zlib1g", "1:1.2.13.dfsg-1",
        "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12",
        architecture="amd64", source_name="zlib", source_version="1:1.2.13.dfsg-1",
        supplier="Mark Brown <broonie@debian.org>", homepage="http://zlib.net/", licenses=[License("Zlib")],
        locations=[Location("/var/lib/dpkg/status.d/zlib1g", "sha256:" + "a" * 64, 0)],
        sha256="b" * 64, download_location="https://deb.example.invalid/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb",
        found_by="dpkg-status.d",
    )  # fmt: skip
    ssl = Package(
        PackageType.DEB, "libssl3", "3.0.22-1~deb12u2",
        "pkg:deb/debian/libssl3@3.0.22-1~deb12u2?arch=amd64&distro=debian-12",
        architecture="amd64", source_name="openssl", source_version="3.0.22-1~deb12u2",
        supplier="Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>",
        licenses=[License("Apache-2.0"), License("Artistic-1.0-Perl OR GPL-1.0-or-later")],
        depends=[zlib.purl, "pkg:deb/debian/not-in-this-sbom@1?arch=amd64"],
    )  # fmt: skip
    tzdata = Package(
        PackageType.DEB, "tzdata", "2026f-0+deb12u1", "pkg:deb/debian/tzdata@2026f-0%2Bdeb12u1?arch=all&distro=debian-12",
        architecture="all", source_name="tzdata",
        licenses=[License("LicenseRef-public-domain", "This database is in the public domain.", "public-domain")],
    )  # fmt: skip
    tricky = Package(
        PackageType.DEB, "libfoo", "1:2.3+dfsg-1~deb12u1", DEB_TRICKY, architecture="amd64",
        source_name="foo", source_version="1:2.3+dfsg-1~deb12u1",
        licenses=[License("LicenseRef-public-domain", "Other words.", "public-domain"),
                  License("GPL-2.0-or-later WITH Texinfo-exception")],
    )  # fmt: skip
    npm = Package(
        PackageType.NPM, "core", "7.24.0", "pkg:npm/%40babel/core@7.24.0", namespace="babel",
        licenses=[License("MIT")], locations=[Location("/app/node_modules/@babel/core/package.json", "sha256:" + "9" * 64, 3)],
        found_by="npm-package-json",
    )  # fmt: skip
    maven = Package(
        PackageType.MAVEN, "jackson-databind", "2.17.0",
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.0", namespace="com.fasterxml.jackson.core",
        licenses=[License("The Apache Software License, Version 2.0")],
    )  # fmt: skip
    pypi = Package(PackageType.PYPI, "requests", "2.31.0", "pkg:pypi/requests@2.31.0", depends=[npm.purl])
    return Sbom(
        name="bastion/python:3.11",
        root_purl=f"pkg:oci/python@{IMAGE_DIGEST.replace(':', '%3A')}?arch=amd64&repository_url=localhost/bastion/python",
        platform="linux/amd64",
        manifest_digest=IMAGE_DIGEST,
        packages=[pypi, maven, npm, tricky, tzdata, ssl, zlib],
        created="2026-07-11T10:16:37Z",
        tool_version="0.1.0",
        distro="debian-12",
        files=[
            SbomFile("/etc/passwd", "d" * 64, "written by bastion: accounts root, nobody, nonroot"),
            SbomFile("/etc/ssl/certs/ca-certificates.crt", "e" * 64, "concatenation of /usr/share/ca-certificates/**",
                     sha1="f" * 40),
        ],
    )  # fmt: skip


def parsed(data: bytes, tmp_path: Path) -> Any:
    """Parse with spdx-tools' own JSON parser and validate: the official check, not ours."""
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(data)
    document = parse_from_file(str(path))
    messages = validate_full_spdx_document(document, "SPDX-2.3")
    assert [message.validation_message for message in messages] == []
    return document


def test_valid_and_parsable(tmp_path: Path) -> None:
    data = to_spdx(sample_sbom())
    document = parsed(data, tmp_path)
    assert len(document.packages) == 1 + 7 + 1  # the image, the packages, /etc/passwd as a FILE package
    assert [file.name for file in document.files] == ["./etc/ssl/certs/ca-certificates.crt"]


def test_deterministic_and_order_independent() -> None:
    sbom = sample_sbom()
    first = to_spdx(sbom)
    assert to_spdx(copy.deepcopy(sbom)) == first
    shuffled = copy.deepcopy(sbom)
    shuffled.packages.reverse()
    shuffled.files.reverse()
    assert to_spdx(shuffled) == first


def test_namespace_follows_content() -> None:
    sbom = sample_sbom()
    doc = json.loads(to_spdx(sbom))
    digest = content_digest(sbom)
    assert doc["documentNamespace"] == f"{NAMESPACE_BASE}bastion-python-3.11/sha256-{'c' * 64}/{digest}"
    changed = sample_sbom()
    changed.packages[0].version = "2.32.0"
    assert json.loads(to_spdx(changed))["documentNamespace"] != doc["documentNamespace"]
    directory = sample_sbom()
    directory.root_purl = directory.manifest_digest = None
    assert "/directory/" in json.loads(to_spdx(directory))["documentNamespace"]


def test_key_fields() -> None:
    doc = json.loads(to_spdx(sample_sbom()))
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["creationInfo"] == {"created": "2026-07-11T10:16:37Z", "creators": ["Tool: bastion-0.1.0"]}
    packages = {package["name"]: package for package in doc["packages"]}
    image = packages["bastion/python:3.11"]
    assert image["primaryPackagePurpose"] == "CONTAINER"
    assert image["externalRefs"][0]["referenceLocator"].startswith("pkg:oci/python@sha256:" + "c" * 64)
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": image["SPDXID"]} in doc["relationships"]  # fmt: skip

    foo = packages["libfoo"]
    assert foo["versionInfo"] == "1:2.3+dfsg-1~deb12u1"
    assert foo["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE_MANAGER",
            "referenceType": "purl",
            "referenceLocator": DEB_TRICKY_CANONICAL,
        }
    ]
    assert foo["sourceInfo"] == "built from source package foo version 1:2.3+dfsg-1~deb12u1"
    assert foo["licenseDeclared"] == "GPL-2.0-or-later WITH Texinfo-exception AND LicenseRef-public-domain"
    assert foo["licenseConcluded"] == foo["copyrightText"] == "NOASSERTION"

    zlib = packages["zlib1g"]
    assert zlib["supplier"] == "Person: Mark Brown (broonie@debian.org)"
    assert zlib["checksums"] == [{"algorithm": "SHA256", "checksumValue": "b" * 64}]
    assert zlib["downloadLocation"].endswith("zlib1g_1.2.13.dfsg-1_amd64.deb")
    assert packages["libssl3"]["supplier"].startswith("Organization: Debian OpenSSL Team")
    assert packages["libssl3"]["licenseDeclared"] == "Apache-2.0 AND (Artistic-1.0-Perl OR GPL-1.0-or-later)"
    assert packages["requests"]["licenseDeclared"] == "NOASSERTION"
    assert packages["core"]["externalRefs"][0]["referenceLocator"] == "pkg:npm/%40babel/core@7.24.0"

    ids = {package["name"]: package["SPDXID"] for package in doc["packages"]}
    contains = {
        rel["relatedSpdxElement"] for rel in doc["relationships"] if rel["relationshipType"] == "CONTAINS"
    }
    assert contains == {
        ids[name]
        for name in ("zlib1g", "libssl3", "tzdata", "libfoo", "core", "jackson-databind", "requests")
    }
    depends = {(rel["spdxElementId"], rel["relatedSpdxElement"]) for rel in doc["relationships"]
               if rel["relationshipType"] == "DEPENDS_ON"}  # fmt: skip
    assert depends == {(ids["libssl3"], ids["zlib1g"]), (ids["requests"], ids["core"])}
    added = {rel["spdxElementId"] for rel in doc["relationships"] if rel["relationshipType"] == "FILE_ADDED"}
    assert added == {ids["/etc/passwd"], doc["files"][0]["SPDXID"]}
    assert packages["/etc/passwd"]["primaryPackagePurpose"] == "FILE"
    assert doc["files"][0]["comment"] == "concatenation of /usr/share/ca-certificates/**"
    assert {item["algorithm"] for item in doc["files"][0]["checksums"]} == {"SHA1", "SHA256"}


def test_extracted_licences() -> None:
    doc = json.loads(to_spdx(sample_sbom()))
    extracted = {item["licenseId"]: item for item in doc["hasExtractedLicensingInfos"]}
    # One id, two texts from two packages: both kept, each under its packages' names.
    assert extracted["LicenseRef-public-domain"]["extractedText"] == (
        "[libfoo]\nOther words.\n\n[tzdata]\nThis database is in the public domain."
    )
    # A cataloger's free-form licence string is never written as an expression: it becomes a LicenseRef.
    packages = {package["name"]: package for package in doc["packages"]}
    ref = packages["jackson-databind"]["licenseDeclared"]
    assert ref == "LicenseRef-The-Apache-Software-License-Version-2.0"
    assert extracted[ref]["extractedText"] == "The Apache Software License, Version 2.0"


def test_invalid_document_is_refused() -> None:
    sbom = sample_sbom()
    document = _document(sbom, _namespace(sbom, content_digest(sbom)))
    validate_spdx(document)  # the document as built is valid ...
    document.relationships.append(Relationship("SPDXRef-Image", RelationshipType.CONTAINS, "SPDXRef-Nowhere"))
    document.extracted_licensing_info.clear()  # ... and these break it: a dangling id, undeclared LicenseRefs
    with pytest.raises(InternalError) as raised:
        validate_spdx(document)
    assert "SPDXRef-Nowhere" in raised.value.message
    assert "LicenseRef-public-domain" in raised.value.message


def test_bad_input_is_an_input_error() -> None:
    sbom = sample_sbom()
    sbom.packages[0].purl = "not a purl"
    with pytest.raises(InputError, match="invalid package URL"):
        to_spdx(sbom)
    sbom = sample_sbom()
    sbom.created = "yesterday"
    with pytest.raises(InputError, match="RFC 3339"):
        to_spdx(sbom)


@pytest.mark.mirror
def test_real_copyrights_make_a_valid_document(copyrights: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """Licences parsed from real bookworm copyright files (free text, public domain in several packages
    with different texts, LicenseRefs aliasing list licences) still give a valid document."""
    packages = [
        Package(PackageType.DEB, name, "1.0", f"pkg:deb/debian/{name}@1.0?arch=amd64",
                licenses=parse_copyright(text, package=name))
        for name, text in sorted(copyrights.items())
    ]  # fmt: skip
    sbom = Sbom("real", None, None, None, packages=packages)
    document = parsed(to_spdx(sbom), tmp_path)
    ids = {item.license_id for item in document.extracted_licensing_info}
    assert {"LicenseRef-public-domain", "LicenseRef-libc6-free-text", "LicenseRef-GPL-text"} <= ids
