"""The definition's ``compliance`` field: claimed profiles (defaulted by variant kind), waivers with
reasons, their overlay merge, the errors a bad one gets (file:line:field), the digest and the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bastion.catalog import definition_schema, load_definition, normalised_digest
from bastion.catalog._parts import Waiver
from bastion.errors import DefinitionError

DEFINITION = """\
name: web
compliance:
  profiles: [default, ./profiles/web.yaml]
  waivers:
    - rule: image_healthcheck
      reason: probed from outside on 8080
    - {rule: files_no_setid, profile: default, reason: ping needs it}
variants:
  runtime: {}
  dev: {}
  fips:
    compliance:
      profiles: [default, fips.yml]
      waivers:
        - "!image_healthcheck"
        - {rule: crypto_fips_provider, reason: validated module loaded at run time}
        - {rule: files_no_setid, profile: default, reason: ping needs it in fips too}
  plain:
    kind: dev
    compliance: null
  none:
    compliance: []
  short:
    compliance: [cis-docker]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_claim_the_default_profile_for_runtime_variants_only(tmp_path: Path) -> None:
    text = "name: web\nvariants:\n  runtime: {}\n  dev: {}\n  slim: {}\n"
    definition = load_definition(write(tmp_path, text))
    assert definition.compliance.profiles is None and definition.compliance.waivers == ()
    assert definition.variant("runtime").claimed_profiles == ("default",)
    assert definition.variant("slim").claimed_profiles == ("default",)  # kind runtime
    assert definition.variant("dev").claimed_profiles == ()
    assert definition.variant("dev").compliance.profiles == ()  # the merge writes the claim out


def test_claims_waivers_and_their_overlays(tmp_path: Path) -> None:
    definition = load_definition(write(tmp_path, DEFINITION))
    runtime = definition.variant("runtime")
    assert runtime.claimed_profiles == ("default", "./profiles/web.yaml")
    assert runtime.compliance.waivers == (
        Waiver(rule="image_healthcheck", reason="probed from outside on 8080"),
        Waiver(rule="files_no_setid", reason="ping needs it", profile="default"),
    )
    assert definition.variant("dev").claimed_profiles == ("default", "./profiles/web.yaml")  # set above
    fips = definition.variant("fips")
    assert fips.claimed_profiles == ("default", "fips.yml")
    # Merged by key: one removed, one added, one replaced in place.
    assert [(w.rule, w.reason) for w in fips.compliance.waivers] == [
        ("files_no_setid", "ping needs it in fips too"),
        ("crypto_fips_provider", "validated module loaded at run time"),
    ]
    assert definition.variant("plain").claimed_profiles == ()  # null: the default for kind dev
    assert definition.variant("none").claimed_profiles == ()
    short = definition.variant("short")
    assert short.claimed_profiles == ("cis-docker",) and len(short.compliance.waivers) == 2


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "compliance:\n  waivers:\n    - rule: image_healthcheck\n",
            4,
            "compliance.waivers[0].reason: required field is missing",
        ),
        (
            "compliance:\n  waivers:\n    - {rule: image_healthcheck, reason: '   '}\n",
            4,
            "compliance.waivers[0].reason: a waiver needs a reason",
        ),
        (
            "compliance:\n  waivers:\n    - {rule: Image-Healthcheck, reason: r}\n",
            4,
            "compliance.waivers[0].rule: 'Image-Healthcheck' is not a valid compliance rule name",
        ),
        (
            "compliance:\n  waivers:\n    - {rule: a, reason: r}\n    - {rule: a, reason: s}\n",
            5,
            "compliance.waivers[1]: duplicate waiver 'a'",
        ),
        (
            "compliance:\n  waivers:\n    - {rule: a, reason: r, until: 2030}\n",
            4,
            "compliance.waivers[0].until: unknown field",
        ),
        (
            "compliance:\n  profiles: ['my profile']\n",
            3,
            "compliance.profiles[0]: 'my profile' is not a valid compliance profile",
        ),
        (
            "compliance:\n  waiver: []\n",
            3,
            "compliance.waiver: unknown field",
        ),
        (
            "variants:\n  runtime:\n    compliance:\n      waivers: ['!image_healthcheck']\n",
            5,
            "variants.runtime.compliance.waivers[0]: '!image_healthcheck' removes nothing",
        ),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "name: web\n" + text)
    with pytest.raises(DefinitionError) as raised:
        load_definition(path)
    assert raised.value.where == f"{path}:{line}"
    assert raised.value.message.startswith(message), raised.value.message


def test_the_digest_covers_claims_and_waivers(tmp_path: Path) -> None:
    base = normalised_digest(load_definition(write(tmp_path, DEFINITION)))
    changed = [
        DEFINITION.replace("probed from outside on 8080", "probed from outside on 8081"),
        DEFINITION.replace("profiles: [default, ./profiles/web.yaml]", "profiles: [default]"),
        DEFINITION.replace("compliance: []", "compliance: [default]"),
    ]
    digests = {normalised_digest(load_definition(write(tmp_path, text))) for text in changed}
    assert base not in digests and len(digests) == len(changed)


def test_the_schema_describes_the_field() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(definition_schema())
    assert list(validator.iter_errors(yaml.safe_load(DEFINITION))) == []
    assert list(validator.iter_errors({"name": "web", "compliance": ["default", "mine.yaml"]})) == []
    for bad in (
        {"waivers": [{"rule": "image_healthcheck"}]},
        {"waivers": [{"rule": "image_healthcheck", "reason": "  "}]},
        {"waivers": [{"rule": "image_healthcheck", "reason": "r", "extra": 1}]},
        {"profiles": ["Not A Profile"]},
    ):
        assert list(validator.iter_errors({"name": "web", "compliance": bad})) != [], bad
