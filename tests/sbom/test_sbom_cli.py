"""SBOMs through the real command line: the build-time SBOM embedded in the image, `bastion sbom` in
both formats on several kinds of input, and `bastion compare`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.conftest import REPO_ROOT, catalog_copy, home_sharing_cache, run_cli

from bastion.config import Settings
from bastion.image import open_target
from bastion.sbom import EMBEDDED_SBOM_PATH

pytestmark = [pytest.mark.mirror, pytest.mark.slow]


@pytest.fixture(scope="module")
def python_home(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Path:
    """The python runtime and dev images for amd64 in a fresh store sharing the test package cache."""
    tmp = tmp_path_factory.mktemp("sbom")
    definition = catalog_copy("python", tmp)
    home = home_sharing_cache(tmp, cached_home)
    result = run_cli(
        "build", str(definition), "--locked", "--platform", "linux/amd64", "--skip-tests", home=home
    )
    assert result.code == 0, result.stderr
    return home


def _lock_packages(variant: str) -> dict[str, dict[str, object]]:
    lock = json.loads((REPO_ROOT / "catalog/python/python.lock.json").read_text())
    return {p["name"]: p for p in lock["variants"][variant]["linux/amd64"]["packages"]}


def _validate_spdx(path: Path) -> dict[str, object]:
    errors = validate_full_spdx_document(parse_file(str(path)))
    assert errors == [], errors[:3]
    document: dict[str, object] = json.loads(path.read_text())
    return document


def _purls(document: dict[str, object]) -> dict[str, dict[str, object]]:
    found = {}
    for package in document["packages"]:  # type: ignore[attr-defined]
        for ref in package.get("externalRefs", []):
            if ref["referenceType"] == "purl" and ref["referenceLocator"].startswith("pkg:deb/"):
                found[package["name"]] = package
    return found


def test_spdx_of_the_runtime_image_is_exact_valid_and_deterministic(
    python_home: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.spdx.json", tmp_path / "b.spdx.json"
    for out in (first, second):
        result = run_cli(
            "sbom", "bastion/python:3.11", "--format", "spdx-json", "-o", str(out), home=python_home
        )
        assert result.code == 0, result.stderr
    assert first.read_bytes() == second.read_bytes()
    document = _validate_spdx(first)
    debs = _purls(document)
    locked = _lock_packages("runtime")
    assert set(debs) == set(locked)
    for name, package in debs.items():
        assert package["versionInfo"] == locked[name]["version"]
        assert package["downloadLocation"].endswith("/" + str(locked[name]["filename"]))
        assert {"algorithm": "SHA256", "checksumValue": locked[name]["sha256"]} in package["checksums"]
        assert package["supplier"].startswith(("Organization: ", "Person: "))
    assert debs["libssl3"]["licenseDeclared"] != "NOASSERTION"
    assert "upstream=openssl" in debs["libssl3"]["externalRefs"][0]["referenceLocator"]
    # The image is the root, by digest; Bastion's own files are listed with where they came from.
    root = next(p for p in document["packages"] if p["SPDXID"] == "SPDXRef-Image")  # type: ignore[attr-defined]
    assert root["externalRefs"][0]["referenceLocator"].startswith("pkg:oci/python@sha256:")
    files = {f["fileName"]: f for f in document["files"]}  # type: ignore[attr-defined]
    assert "concatenation" in files["./etc/ssl/certs/ca-certificates.crt"]["comment"]
    assert "accounts" in files["./etc/passwd"]["comment"]
    assert "." + EMBEDDED_SBOM_PATH in files
    depends = [r for r in document["relationships"] if r["relationshipType"] == "DEPENDS_ON"]  # type: ignore[attr-defined]
    assert len(depends) >= len(locked) - 5  # the dependency graph from Depends


def test_embedded_sbom_is_a_valid_document_naming_the_same_packages(
    python_home: Path, tmp_path: Path
) -> None:
    with open_target("bastion/python:3.11", Settings(home=python_home)) as target:
        embedded = tmp_path / "embedded.spdx.json"
        embedded.write_bytes(target.read(EMBEDDED_SBOM_PATH))
        info = target.files[EMBEDDED_SBOM_PATH]
    assert (info.uid, info.gid, info.mode) == (0, 0, 0o644)
    document = _validate_spdx(embedded)
    assert set(_purls(document)) == set(_lock_packages("runtime"))


def test_cyclonedx_validates_and_other_inputs_agree(python_home: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    assert run_cli("export", "bastion/python:3.11", f"oci-dir://{layout}:3.11", home=python_home).code == 0
    outputs = {}
    for name, image in (("store", "bastion/python:3.11"), ("layout", f"oci-dir://{layout}:3.11")):
        out = tmp_path / f"{name}.cdx.json"
        result = run_cli("sbom", image, "--format", "cyclonedx-json", "-o", str(out), home=python_home)
        assert result.code == 0, result.stderr
        errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(out.read_text())
        assert errors is None, errors
        bom = json.loads(out.read_text())
        outputs[name] = {
            (c["name"], c["version"]) for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")
        }
    assert outputs["store"] == outputs["layout"]
    assert {name for name, _ in outputs["store"]} == set(_lock_packages("runtime"))


def test_compare_runtime_and_dev(python_home: Path) -> None:
    result = run_cli("compare", "bastion/python:3.11", "bastion/python:3.11-dev", home=python_home)
    if result.code != 0 and "unknown image" in result.stderr:
        tags = run_cli("images", home=python_home).stdout
        pytest.fail(f"dev variant tag not found: {tags}")
    assert result.code == 0, result.stderr
    added = set(_lock_packages("dev")) - set(_lock_packages("runtime"))
    for name in ("bash", "apt", "dpkg"):
        assert name in added
        assert name in result.stdout
    markdown = run_cli(
        "compare", "bastion/python:3.11", "bastion/python:3.11-dev", "--format", "markdown", home=python_home
    )
    assert markdown.code == 0 and "| " in markdown.stdout
