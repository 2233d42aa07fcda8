"""Bastion's python images evaluated with the default profile, their XCCDF
validated by OpenSCAP, and the command line on a real image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bastion.catalog import load_definition
from bastion.compliance import (
    Result,
    Severity,
    compliance,
    evaluate_claims,
    load_profile,
    to_html,
    to_json,
    to_xccdf,
)
from bastion.errors import ExitCode
from tests.compliance.conftest import BuiltImage
from tests.compliance.oscap import validate
from tests.conftest import REPO_ROOT, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

#: What the runtime image fails without its definition's waivers: it defines no health check (an
#: interpreter image has no service to check; catalog/python/python.yaml waives it with the reason).
KNOWN_RUNTIME_FINDINGS = {"image_healthcheck"}
CATALOG = REPO_ROOT / "catalog"


def _by_name(image: BuiltImage) -> dict[str, Result]:
    return {r.rule.name: r.result for r in image.result.results}


def test_python_runtime_passes_every_high_severity_rule(python_images: dict[str, BuiltImage]) -> None:
    runtime = python_images["runtime"]
    high = [r for r in runtime.result.results if r.severity is Severity.HIGH]
    assert len(high) >= 15
    assert {r.rule.name: r.result for r in high if r.result not in (Result.PASS, Result.NOTAPPLICABLE)} == {}
    results = _by_name(runtime)
    for name in (
        "image_user_nonroot",
        "packages_no_shells",
        "packages_no_package_managers",
        "files_no_setid",
    ):
        assert results[name] is Result.PASS, name
    assert {r.rule.name for r in runtime.result.failed} == KNOWN_RUNTIME_FINDINGS
    assert runtime.result.target.runtime and runtime.result.target.variant == "runtime"


def test_python_dev_fails_the_shell_and_package_manager_rules(
    python_images: dict[str, BuiltImage], tmp_path: Path
) -> None:
    dev = python_images["dev"]
    results = _by_name(dev)
    # With the default profile those rules apply to runtime images only ...
    assert results["packages_no_shells"] is Result.NOTAPPLICABLE
    assert results["packages_no_package_managers"] is Result.NOTAPPLICABLE
    assert results["image_user_nonroot"] is Result.FAIL  # the dev variant runs as root
    # ... a profile that applies them to every variant sees the dev image's shells and apt.
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "name: strict\nversion: '1'\nextends: default\nrules:\n"
        "  - {id: packages_no_shells, params: {runtime_only: false}}\n"
        "  - {id: packages_no_package_managers, params: {runtime_only: false}}\n"
    )
    strict_result = {r.rule.name: r for r in compliance(dev.target, load_profile(strict)).results}
    assert strict_result["packages_no_shells"].result is Result.FAIL
    assert "/usr/bin/bash" in strict_result["packages_no_shells"].evidence
    assert strict_result["packages_no_package_managers"].result is Result.FAIL
    assert {"/usr/bin/apt", "/usr/bin/dpkg"} <= set(strict_result["packages_no_package_managers"].evidence)


def test_the_runtime_image_has_what_the_dev_image_lacks(python_images: dict[str, BuiltImage]) -> None:
    runtime, dev = _by_name(python_images["runtime"]), _by_name(python_images["dev"])
    assert runtime["accounts_nologin_shells"] is Result.PASS
    assert dev["accounts_nologin_shells"] is Result.NOTAPPLICABLE  # root keeps bash in dev
    assert dev["files_no_setid"] is Result.FAIL  # passwd, chsh, ... from the passwd package
    assert runtime["crypto_ca_bundle"] is Result.PASS


@pytest.mark.parametrize("variant", ["runtime", "dev"])
def test_xccdf_of_the_python_images_validates_with_openscap(
    python_images: dict[str, BuiltImage], variant: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{variant}.xml"
    path.write_bytes(to_xccdf(python_images[variant].result))
    assert validate(path) == []


def test_evaluating_the_same_image_twice_gives_the_same_bytes(python_images: dict[str, BuiltImage]) -> None:
    runtime = python_images["runtime"]
    # At the same evaluation time, as the build gives it (a standalone scan records the clock instead).
    first = compliance(runtime.target, time=runtime.result.time)
    again = compliance(runtime.target, time=runtime.result.time)
    assert to_xccdf(again) == to_xccdf(first)
    assert to_html(again) == to_html(first)
    assert to_json(again) == to_json(first)


def test_cli_reports_on_an_oci_layout(python_images: dict[str, BuiltImage], tmp_path: Path) -> None:
    home = tmp_path / "home"
    runtime = python_images["runtime"]
    image = f"oci-dir://{runtime.layout}"
    result = run_cli("compliance", image, "--format", "json", home=home)
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["summary"]["counts"] == json.loads(to_json(runtime.result))["summary"]["counts"]
    out = tmp_path / "report.xml"
    result = run_cli("compliance", image, "--format", "xccdf", "-o", str(out), home=home)
    assert result.code == 0, result.stderr
    assert validate(out) == []
    result = run_cli("compliance", image, home=home)
    assert "image_user_nonroot" in result.stdout and "score" in result.stdout
    result = run_cli("compliance", image, "--exit-code", home=home)
    assert result.code == ExitCode.FINDINGS, result.stderr  # the known findings above


def test_the_python_images_meet_what_their_definition_claims(
    python_images: dict[str, BuiltImage], tmp_path: Path
) -> None:
    definition = load_definition(CATALOG / "python" / "python.yaml")
    runtime, dev = definition.variant("runtime"), definition.variant("dev")
    assert runtime.claimed_profiles == ("default",) and dev.claimed_profiles == ()
    target = python_images["runtime"].target
    claims = evaluate_claims(
        target,
        runtime.claimed_profiles,
        runtime.compliance.waivers,
        time=str(target.config["created"]),
        base_dir=definition.path.parent,
    )
    assert claims.passed and claims.label == "bastion-container-baseline@1.0.0"
    (result,) = claims.results
    assert {r.rule.name for r in result.waived} == KNOWN_RUNTIME_FINDINGS
    assert result.score == 100.0 and claims.unused_waivers == ()
    path = tmp_path / "claims.xml"
    path.write_bytes(to_xccdf(result))
    assert validate(path) == []
    nothing = evaluate_claims(
        python_images["dev"].target, dev.claimed_profiles, dev.compliance.waivers, time="2025-01-01T00:00:00Z"
    )
    assert nothing.passed and nothing.label == ""


@pytest.mark.parametrize(
    ("name", "reference"),
    [("static", "bastion/static:12"), ("base", "bastion/base:12"), ("nginx", "bastion/nginx:1.22")],
)
def test_the_catalog_runtime_images_pass_the_default_profile(
    cached_home: Path, name: str, reference: str
) -> None:
    definition = CATALOG / name / f"{name}.yaml"
    built = run_cli(
        "build", str(definition), "--locked", "--skip-tests", "--platform", "linux/amd64", home=cached_home
    )
    assert built.code == 0, built.stderr
    args = ["compliance", reference, "--platform", "linux/amd64", "--format", "json"]
    checked = run_cli(*args, "--definition", str(definition), "--exit-code", home=cached_home)
    assert checked.code == 0, checked.stderr
    document = json.loads(checked.stdout)
    assert document["summary"]["counts"]["fail"] == 0 and document["summary"]["score"] == 100.0
    waived = {r["name"] for r in document["rules"] if r["override"] is not None}
    # nginx waives its health check with a reason; static and base run no program, so the rule does
    # not apply to them.
    assert waived == ({"image_healthcheck"} if name == "nginx" else set())
