"""CycloneDX 1.6 JSON: valid against the official 1.6 schema (checked here independently of the writer's
own check), deterministic, and carrying the fields consumers read."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from tests.sbom.test_licenses import copyrights  # noqa: F401  (a fixture used below)
from tests.sbom.test_spdx import DEB_TRICKY_CANONICAL, sample_sbom

from bastion.errors import InternalError
from bastion.sbom import Package, PackageType, Sbom, parse_copyright, to_cyclonedx
from bastion.sbom._cyclonedx import SERIAL_NAMESPACE, validate_cyclonedx
from bastion.sbom._spdx import content_digest


def valid(data: bytes) -> dict[str, Any]:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode(), all_errors=True)
    assert errors is None, [str(error) for error in errors]
    document: dict[str, Any] = json.loads(data)
    return document


def components(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {component["name"]: component for component in doc["components"]}


def test_valid_and_deterministic() -> None:
    sbom = sample_sbom()
    data = to_cyclonedx(sbom)
    doc = valid(data)
    assert doc["specVersion"] == "1.6"
    assert to_cyclonedx(copy.deepcopy(sbom)) == data
    shuffled = copy.deepcopy(sbom)
    shuffled.packages.reverse()
    assert to_cyclonedx(shuffled) == data
    assert doc["serialNumber"] == f"urn:uuid:{uuid.uuid5(SERIAL_NAMESPACE, content_digest(sbom))}"
    changed = sample_sbom()
    changed.packages[0].version = "2.32.0"
    assert json.loads(to_cyclonedx(changed))["serialNumber"] != doc["serialNumber"]


def test_metadata() -> None:
    doc = valid(to_cyclonedx(sample_sbom()))
    metadata = doc["metadata"]
    assert metadata["timestamp"] == "2026-07-11T10:16:37+00:00"
    assert metadata["tools"]["components"] == [{"type": "application", "name": "bastion", "version": "0.1.0"}]
    image = metadata["component"]
    assert image["type"] == "container"
    assert image["purl"].startswith("pkg:oci/python@sha256:" + "c" * 64)
    assert image["bom-ref"] == image["purl"]


def test_components() -> None:
    doc = valid(to_cyclonedx(sample_sbom()))
    found = components(doc)
    foo = found["libfoo"]
    assert foo["bom-ref"] == foo["purl"] == DEB_TRICKY_CANONICAL
    assert foo["version"] == "1:2.3+dfsg-1~deb12u1"
    assert foo["licenses"] == [
        {"expression": "GPL-2.0-or-later WITH Texinfo-exception AND LicenseRef-public-domain"}
    ]
    assert {"name": "bastion:deb:source-name", "value": "foo"} in foo["properties"]

    npm = found["core"]
    assert (npm["group"], npm["purl"]) == ("@babel", "pkg:npm/%40babel/core@7.24.0")
    assert npm["evidence"]["occurrences"] == [
        {
            "location": "/app/node_modules/@babel/core/package.json",
            "additionalContext": "layer 3 sha256:" + "9" * 64,
        }
    ]
    assert {"name": "bastion:location:0:layer-digest", "value": "sha256:" + "9" * 64} in npm["properties"]
    assert found["jackson-databind"]["group"] == "com.fasterxml.jackson.core"

    zlib = found["zlib1g"]
    assert zlib["licenses"] == [{"license": {"id": "Zlib"}}]
    assert zlib["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    assert {"type": "distribution", "url": zlib["externalReferences"][0]["url"]} in zlib["externalReferences"]
    assert zlib["supplier"]["contact"] == [{"name": "Mark Brown", "email": "broonie@debian.org"}]

    tzdata = found["tzdata"]
    assert tzdata["licenses"] == [
        {"license": {"name": "LicenseRef-public-domain",
                     "text": {"content": "This database is in the public domain.", "contentType": "text/plain"}}}
    ]  # fmt: skip
    ssl = found["libssl3"]
    assert ssl["licenses"] == [{"expression": "Apache-2.0 AND (Artistic-1.0-Perl OR GPL-1.0-or-later)"}]
    assert "licenses" not in found["requests"]

    ca = found["/etc/ssl/certs/ca-certificates.crt"]
    assert ca["type"] == "file"
    assert {item["alg"] for item in ca["hashes"]} == {"SHA-1", "SHA-256"}


def test_dependencies() -> None:
    doc = valid(to_cyclonedx(sample_sbom()))
    graph = {item["ref"]: set(item.get("dependsOn", [])) for item in doc["dependencies"]}
    image = doc["metadata"]["component"]["bom-ref"]
    assert graph[image] == {component["bom-ref"] for component in doc["components"]}
    found = components(doc)
    assert graph[found["libssl3"]["bom-ref"]] == {found["zlib1g"]["bom-ref"]}  # the unknown depend is dropped
    assert graph[found["requests"]["bom-ref"]] == {found["core"]["bom-ref"]}
    assert graph[found["zlib1g"]["bom-ref"]] == set()


def test_invalid_document_is_refused() -> None:
    doc = json.loads(to_cyclonedx(sample_sbom()))
    validate_cyclonedx(json.dumps(doc))
    doc["components"][0]["type"] = "not-a-type"
    doc["metadata"]["timestamp"] = "yesterday"
    with pytest.raises(InternalError, match=r"1\.6 schema") as raised:
        validate_cyclonedx(json.dumps(doc))
    assert "not-a-type" in raised.value.message


def test_directory_sbom() -> None:
    sbom = sample_sbom()
    sbom.root_purl = sbom.manifest_digest = None
    doc = valid(to_cyclonedx(sbom))
    assert doc["metadata"]["component"]["type"] == "file"


@pytest.mark.mirror
def test_real_copyrights_make_a_valid_document(copyrights: dict[str, str]) -> None:  # noqa: F811
    packages = [
        Package(PackageType.DEB, name, "1.0", f"pkg:deb/debian/{name}@1.0?arch=amd64",
                licenses=parse_copyright(text, package=name))
        for name, text in sorted(copyrights.items())
    ]  # fmt: skip
    doc = valid(to_cyclonedx(Sbom("real", None, None, None, packages=packages)))
    libc = components(doc)["libc6"]
    # A free-text LicenseRef next to SPDX ids: a list of licences, the free text attached.
    names = [item["license"].get("id") or item["license"]["name"] for item in libc["licenses"]]
    assert names == ["GPL-2.0-or-later", "LGPL-2.1-or-later", "LicenseRef-libc6-free-text"]
    assert libc["licenses"][2]["license"]["text"]["content"] == copyrights["libc6"].strip()


@pytest.mark.parametrize("supplier", ["Wes", "Wes <azer>", "<azer>", "a@b", "Name <a@b.example>"])
def test_supplier_that_is_not_an_address_still_makes_valid_documents(supplier: str) -> None:
    """Seen in real npm packages ("author": "Wes <azer>"): a name must not become an email field."""
    from bastion.sbom import to_spdx

    sbom = sample_sbom()
    sbom.packages[0].supplier = supplier
    valid(to_cyclonedx(sbom))
    to_spdx(sbom)  # validates itself, raising InternalError if invalid
