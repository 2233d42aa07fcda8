"""What a build does with a definition's compliance claims: evaluate each claimed profile on the
assembled tree (no layers, no digest yet), record waived failures as XCCDF tailoring, name the passed
profiles in the label, explain unwaived failures, and produce the attestation predicate."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree, html

from bastion.compliance import (
    COMPLIANCE_LABEL,
    COMPLIANCE_PREDICATE_TYPE,
    ComplianceFailed,
    Result,
    evaluate_claims,
    to_json,
    to_xccdf,
)
from bastion.errors import ExitCode, InputError
from tests.compliance.crafted import Crafted, clean_image
from tests.compliance.oscap import validate

NS = {"x": "http://checklists.nist.gov/xccdf/1.2"}
TIME = "2025-02-03T04:05:06Z"
BASELINE = "bastion-container-baseline@1.0.0"


@dataclass(frozen=True)
class W:
    """A waiver as a definition holds one (``bastion.catalog`` models have the same attributes)."""

    rule: str
    reason: str
    profile: str | None = None


def _no_healthcheck(root: Path) -> Crafted:
    """A service image without a health check: it fails image_healthcheck (low) and nothing else."""
    image = clean_image(root)
    image.image_config.pop("Healthcheck")
    return image


def _xccdf(claims_predicate: dict[str, object], index: int = 0) -> bytes:
    profiles = claims_predicate["profiles"]
    assert isinstance(profiles, list)
    return base64.b64decode(profiles[index]["outputs"]["xccdf"])


def test_a_clean_assembled_tree_passes_and_is_labelled(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    with image.target() as target:
        assert target.layers == () and target.manifest_digest is None  # as the build calls it
        claims = evaluate_claims(target, ["default"], [], time=TIME)
    assert claims.passed and claims.failures == () and claims.unused_waivers == ()
    assert claims.label == BASELINE
    claims.require_passed()  # does not raise
    predicate = claims.predicate
    assert COMPLIANCE_PREDICATE_TYPE == "https://bastion.invalid/attestations/compliance/v1"
    assert predicate["scanner"] == {"name": "bastion", "version": "0.1.0"}
    assert predicate["image"] == {
        "name": "crafted:1",
        "platform": "linux/amd64",
        "variant": "runtime",
        "runtime": True,
    }  # no digest before the layers are written: the statement's subject carries it
    (entry,) = predicate["profiles"]
    assert entry["name"] == "bastion-container-baseline" and entry["version"] == "1.0.0"
    assert entry["passed"] is True and entry["waivers"] == [] and entry["time"] == TIME
    assert entry["score"] == 100.0 and entry["maxScore"] == 100.0
    assert set(entry["summary"]) == {w.value for w in Result}
    assert sum(entry["summary"].values()) == len(claims.results[0].results)
    assert entry["summary"]["fail"] == 0 and entry["summary"]["pass"] > 30
    json.dumps(predicate)  # JSON as it stands
    root = etree.fromstring(_xccdf(predicate))
    assert root.xpath("//x:TestResult/@end-time", namespaces=NS) == [TIME]
    page = html.fromstring(base64.b64decode(entry["outputs"]["html"]))
    (box,) = page.xpath("//*[@id='count-pass']")
    assert box.text_content().strip().startswith(str(entry["summary"]["pass"]))


def test_an_unwaived_failure_fails_the_claim_with_a_clear_error(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.image_config["User"] = "0"
    image.write("/srv/open", "x", mode=0o666)
    with image.target() as target:
        claims = evaluate_claims(target, ["default"], [], time=TIME)
    assert not claims.passed and claims.label == ""
    failures = {f.rule: f for f in claims.failures}
    assert set(failures) == {"image_user_nonroot", "files_no_world_writable"}
    user = failures["image_user_nonroot"]
    assert (user.profile, user.severity, user.result) == ("bastion-container-baseline 1.0.0", "high", "fail")
    assert user.evidence == "User=0"
    assert failures["files_no_world_writable"].evidence == "/srv/open mode 0666 uid 0 gid 0"
    with pytest.raises(ComplianceFailed) as raised:
        claims.require_passed()
    text = raised.value.diagnostic()
    assert "image_user_nonroot (high)" in text and "/srv/open" in text and "compliance.waivers" in text
    assert "\n" not in text
    assert raised.value.exit_code is ExitCode.FINDINGS


def test_a_waived_failure_is_tailoring_that_openscap_accepts(tmp_path: Path) -> None:
    with _no_healthcheck(tmp_path).target() as target:
        unwaived = evaluate_claims(target, ["default"], [], time=TIME)
        claims = evaluate_claims(
            target,
            ["default"],
            [W("image_healthcheck", "  probed from outside <on 8080> & no client in the image ")],
            time=TIME,
            authority="definition catalog/web/web.yaml",
        )
    assert not unwaived.passed and [f.rule for f in unwaived.failures] == ["image_healthcheck"]
    assert claims.passed and claims.label == BASELINE and claims.unused_waivers == ()
    (result,) = claims.results
    (waived,) = result.waived
    assert waived.rule.name == "image_healthcheck" and waived.result is Result.NOTSELECTED
    assert waived.override is not None and waived.override.old_result is Result.FAIL
    assert waived.evidence == ("Healthcheck=",)  # the check's own finding is kept
    assert result.score == 100.0 > unwaived.results[0].score  # an unselected rule is not scored

    document = to_xccdf(result)
    path = tmp_path / "waived.xml"
    path.write_bytes(document)
    assert validate(path) == []  # oscap xccdf validate, schematron included
    root = etree.fromstring(document)
    assert root.xpath("//x:override", namespaces=NS) == []
    tailored = "xccdf_dev.bastion_profile_bastion-container-baseline_waived"
    assert root.xpath("//x:TestResult/x:profile/@idref", namespaces=NS) == [tailored]
    (profile,) = root.xpath(f"//x:Profile[@id='{tailored}']", namespaces=NS)
    (select,) = profile.xpath("x:select[@selected='false']", namespaces=NS)
    assert select.get("idref") == "xccdf_dev.bastion_rule_image_healthcheck"
    assert select.findtext("x:remark", namespaces=NS) == (
        "waived by definition catalog/web/web.yaml: probed from outside <on 8080> & no client in the image"
    )
    assert len(profile.xpath("x:select[@selected='true']", namespaces=NS)) == len(result.results) - 1
    (rule_result,) = root.xpath(
        "//x:rule-result[@idref='xccdf_dev.bastion_rule_image_healthcheck']", namespaces=NS
    )
    assert rule_result.findtext("x:result", namespaces=NS) == "notselected"
    messages = rule_result.xpath("x:message/text()", namespaces=NS)
    assert messages[0].startswith("the check's result: fail: ")
    assert messages[1] == (
        "waived by definition catalog/web/web.yaml: probed from outside <on 8080> & no client in the image"
    )
    assert rule_result.xpath("x:message[@severity='warning']/text()", namespaces=NS) == ["Healthcheck="]

    (entry,) = claims.predicate["profiles"]
    assert entry["waivers"] == [
        {
            "rule": "image_healthcheck",
            "severity": "low",
            "reason": "probed from outside <on 8080> & no client in the image",
            "authority": "definition catalog/web/web.yaml",
            "oldResult": "fail",
            "newResult": "notselected",
        }
    ]
    assert entry["summary"]["fail"] == 0 and entry["summary"]["notselected"] == 1
    assert _xccdf(claims.predicate) == document
    rules = {r["name"]: r for r in json.loads(to_json(result))["rules"]}
    assert rules["image_healthcheck"]["override"]["old_result"] == "fail"
    assert rules["image_user_nonroot"]["override"] is None
    page = html.fromstring(base64.b64decode(entry["outputs"]["html"]))
    (box,) = page.xpath("//*[@id='count-waived']")
    assert box.text_content().strip().startswith("1")
    assert "probed from outside <on 8080>" in page.text_content()
    assert len(page.xpath("//*[@id]")) == len(set(page.xpath("//*[@id]/@id")))  # ids stay unique


def test_a_report_with_an_override_is_what_openscap_rejects(tmp_path: Path) -> None:
    # Why waivers are not XCCDF overrides: OpenSCAP's default validation rejects any TestResult that
    # holds one. The validation helper can fail, and fails on exactly that.
    with _no_healthcheck(tmp_path).target() as target:
        claims = evaluate_claims(target, ["default"], [W("image_healthcheck", "why")], time=TIME)
    override = (
        b'<result>notselected</result>\n      <override time="2025-02-03T04:05:06Z" authority="x">'
        b"<old-result>fail</old-result><new-result>notselected</new-result><remark>why</remark></override>"
    )
    path = tmp_path / "override.xml"
    path.write_bytes(_xccdf(claims.predicate).replace(b"<result>notselected</result>", override))
    assert any("override" in problem for problem in validate(path))


def test_waivers_cover_only_the_profile_they_name(tmp_path: Path) -> None:
    own = tmp_path / "profiles" / "own.yaml"
    own.parent.mkdir()
    own.write_text("name: own\nversion: '2'\nextends: default\n")
    image = _no_healthcheck(tmp_path / "image")
    waiver = W("image_healthcheck", "only in own", profile="profiles/own.yaml")
    with image.target() as target:
        claims = evaluate_claims(
            target, ["default", "profiles/own.yaml"], [waiver], time=TIME, base_dir=tmp_path
        )
        by_name = evaluate_claims(
            target, ["profiles/own.yaml"], [W("image_healthcheck", "by name", profile="own")], time=TIME,
            base_dir=tmp_path,
        )  # fmt: skip
        by_alias = evaluate_claims(
            target,
            ["bastion-container-baseline"],
            [W("image_healthcheck", "alias", profile="default")],
            time=TIME,
        )
        elsewhere = evaluate_claims(target, ["default"], [waiver], time=TIME)
    assert [r.profile.name for r in claims.results] == ["bastion-container-baseline", "own"]
    assert [len(r.waived) for r in claims.results] == [0, 1]
    assert not claims.passed and claims.label == "own@2"  # only the profiles that passed
    assert [f.profile for f in claims.failures] == ["bastion-container-baseline 1.0.0"]
    assert by_name.passed and by_alias.passed
    assert not elsewhere.passed and elsewhere.unused_waivers == ("image_healthcheck@profiles/own.yaml",)


def test_a_waiver_of_a_passing_rule_is_reported_unused(tmp_path: Path) -> None:
    with clean_image(tmp_path).target() as target:
        claims = evaluate_claims(target, ["default"], [W("files_no_setid", "nothing to waive")], time=TIME)
    assert claims.passed and claims.unused_waivers == ("files_no_setid",)
    assert claims.results[0].waived == ()


def test_a_waiver_of_an_unknown_rule_is_an_input_error(tmp_path: Path) -> None:
    with clean_image(tmp_path).target() as target, pytest.raises(InputError) as raised:
        evaluate_claims(
            target, ["default"], [W("files_no_setid", "x"), W("image_healtcheck", "typo")], time=TIME
        )
    assert "compliance.waivers[1].rule" in raised.value.diagnostic()
    assert "image_healthcheck" in raised.value.diagnostic()  # the hint


def test_an_unknown_profile_is_an_input_error(tmp_path: Path) -> None:
    with clean_image(tmp_path).target() as target, pytest.raises(InputError, match="no profile"):
        evaluate_claims(target, ["no-such-profile"], [], time=TIME)


def test_an_error_is_never_waived(tmp_path: Path) -> None:
    # A profile that requires the compliance label asks for the result of its own evaluation: the
    # rule reports error (not a fail that could be waived), and the claim cannot pass.
    circular = tmp_path / "circular.yaml"
    circular.write_text(
        "name: circular\nversion: '1'\nrules:\n"
        f"  - {{id: image_provenance_labels, params: {{required: [{COMPLIANCE_LABEL}]}}}}\n"
    )
    image = clean_image(tmp_path / "image")
    image.image_config["Labels"][COMPLIANCE_LABEL] = "circular@1"
    with image.target() as target:
        claims = evaluate_claims(
            target, [str(circular)], [W("image_provenance_labels", "try to waive it")], time=TIME
        )
    (failure,) = claims.failures
    assert failure.result == "error" and COMPLIANCE_LABEL in failure.message
    assert not claims.passed and claims.label == "" and claims.unused_waivers == ("image_provenance_labels",)


def test_the_compliance_label_does_not_change_the_result(tmp_path: Path) -> None:
    # The build evaluates before it sets the label; a scan of the labelled image must agree.
    image = clean_image(tmp_path)
    with image.target() as target:
        before = evaluate_claims(target, ["default"], [], time=TIME)
    image.image_config["Labels"][COMPLIANCE_LABEL] = BASELINE
    with image.target() as target:
        after = evaluate_claims(target, ["default"], [], time=TIME)
    assert to_xccdf(after.results[0]) == to_xccdf(before.results[0])
    assert after.predicate == before.predicate


def test_no_claim_is_a_pass_with_an_empty_label(tmp_path: Path) -> None:
    image = clean_image(tmp_path)
    image.image_config["User"] = "root"
    with image.target() as target:
        claims = evaluate_claims(target, [], [W("image_user_nonroot", "dev image")], time=TIME)
    assert claims.passed and claims.label == "" and claims.predicate["profiles"] == []
    assert claims.unused_waivers == ("image_user_nonroot",)


def test_the_time_is_the_callers(tmp_path: Path) -> None:
    with _no_healthcheck(tmp_path).target() as target:
        claims = evaluate_claims(
            target, ["default"], [W("image_healthcheck", "r")], time="2024-05-06T07:08:09.123456789+02:00"
        )
        with pytest.raises(InputError, match="RFC 3339"):
            evaluate_claims(target, ["default"], [], time="yesterday")
    (result,) = claims.results
    assert result.time == datetime(2024, 5, 6, 5, 8, 9, 123456, tzinfo=UTC)
    (waived,) = result.waived
    assert waived.override is not None and waived.override.time == result.time


def test_healthcheck_does_not_apply_to_an_image_that_runs_nothing(tmp_path: Path) -> None:
    image = _no_healthcheck(tmp_path)
    image.image_config.pop("Entrypoint")
    with image.target() as target:
        claims = evaluate_claims(target, ["default"], [], time=TIME)
    rules = {r.rule.name: r for r in claims.results[0].results}
    assert rules["image_healthcheck"].result is Result.NOTAPPLICABLE
    assert "no Entrypoint or Cmd" in rules["image_healthcheck"].message
    assert claims.passed
    image.image_config["Cmd"] = ["serve"]
    with image.target() as target:
        again = evaluate_claims(target, ["default"], [], time=TIME)
    assert [f.rule for f in again.failures] == ["image_healthcheck"]
