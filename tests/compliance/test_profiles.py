"""Profiles are data: the built-in baseline, user profiles that extend and tailor it, and the errors a
bad profile file gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from bastion.compliance import (
    DEFAULT_PROFILE,
    RULES,
    Area,
    Result,
    Severity,
    builtin_profiles,
    compliance,
    load_profile,
    to_xccdf,
)
from bastion.errors import InputError
from tests.compliance.crafted import clean_image

NS = {"x": "http://checklists.nist.gov/xccdf/1.2"}


def test_the_default_profile_holds_every_rule_of_the_catalogue() -> None:
    assert DEFAULT_PROFILE in builtin_profiles()
    profile = load_profile("default")
    assert profile.name == DEFAULT_PROFILE and profile.version == "1.0.0"
    names = [c.rule.name for c in profile.rules]
    assert sorted(names) == sorted(RULES) and len(set(names)) == len(names)
    areas = [c.rule.area for c in profile.rules]
    assert areas == sorted(areas, key=list(Area).index)  # grouped by area, in the report's order
    assert len(profile.rules) >= 40
    for config in profile.rules:
        assert config.severity is config.rule.severity
        assert config.rule.title and config.rule.rationale and config.rule.description
        assert all(c.startswith("CCI-") and len(c) == 10 for c in config.rule.cci)
        assert all(s.startswith("4.") for s in config.rule.cis)


def test_a_user_profile_extends_disables_and_overrides(tmp_path: Path) -> None:
    image = clean_image(tmp_path / "image")
    image.set("/usr/bin/python3", mode=0o4755)
    image.image_config.pop("Healthcheck")
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: my-service\nversion: '2.1'\ntitle: My service\nextends: default\n"
        "disable: [image_healthcheck, xccdf_dev.bastion_rule_host_audit]\n"
        "rules:\n"
        "  - {id: files_no_setid, allow: [/usr/bin/python3]}\n"
        "  - {id: files_no_world_writable, severity: high}\n"
    )
    profile = load_profile(path)
    assert (profile.name, profile.version, profile.title) == ("my-service", "2.1", "My service")
    names = [c.rule.name for c in profile.rules]
    assert "image_healthcheck" not in names and "host_audit" not in names
    assert len(names) == len(RULES) - 2
    with image.target() as target:
        result = compliance(target, profile)
    assert result.failed == ()
    by_name = {r.rule.name: r for r in result.results}
    assert by_name["files_no_setid"].result is Result.PASS
    assert by_name["files_no_world_writable"].severity is Severity.HIGH
    root = etree.fromstring(to_xccdf(result))
    (refine,) = root.xpath("//x:Profile/x:refine-rule", namespaces=NS)
    assert refine.get("idref") == "xccdf_dev.bastion_rule_files_no_world_writable"
    assert refine.get("severity") == "high"
    assert root.xpath("//x:Profile/@id", namespaces=NS) == ["xccdf_dev.bastion_profile_my-service"]


def test_extends_a_profile_file_beside_it(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\nversion: '1'\nrules: [image_user_nonroot, files_no_setid]\n"
    )
    (tmp_path / "child.yaml").write_text(
        "name: child\nversion: '1'\nextends: base.yaml\ndisable: [files_no_setid]\n"
    )
    profile = load_profile(tmp_path / "child.yaml")
    assert [c.rule.name for c in profile.rules] == ["image_user_nonroot"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: p\nversion: '1'\nrules: [no_such_rule]\n", "rules[0]: unknown rule 'no_such_rule'"),
        ("name: p\nversion: '1'\nrules: [files_no_setd]\n", "did you mean files_no_setid"),
        ("name: p\nversion: '1'\ncolour: blue\n", "colour"),
        ("name: 'bad name'\nversion: '1'\n", "name"),
        ("version: '1'\n", "name: Field required"),
        ("name: p\nversion: '1'\nrules: [{id: image_env_no_secrets, params: {nope: 1}}]\n", "params.nope"),
        ("name: p\nversion: '1'\nrules: [{id: files_no_setid, severity: urgent}]\n", "severity"),
        (
            "name: p\nversion: '1'\nrules: [{id: image_no_remote_access_ports, params: {ports: 22}}]\n",
            "must be a list",
        ),
        ("name: p\nversion: '1'\nextends: missing.yaml\n", "no profile 'missing.yaml'"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_profiles_are_input_errors_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_profile(path)
    assert message in caught.value.diagnostic()


def test_an_unknown_profile_name_lists_the_built_ins() -> None:
    with pytest.raises(InputError) as caught:
        load_profile("nonexistent-profile")
    assert DEFAULT_PROFILE in caught.value.diagnostic()


def test_a_profile_extending_itself_stops(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text("name: loop\nversion: '1'\nextends: loop.yaml\n")
    with pytest.raises(InputError, match="deep"):
        load_profile(tmp_path / "loop.yaml")
