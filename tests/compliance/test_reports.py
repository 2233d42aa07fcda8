"""The reports of a crafted image: XCCDF that OpenSCAP accepts, the default-model score, HTML with the
counts visible and everything from the image escaped, JSON, the summary, and determinism."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree, html

from bastion.compliance import ComplianceResult, Result, compliance, summary, to_html, to_json, to_xccdf
from tests.compliance.crafted import Crafted, clean_image
from tests.compliance.oscap import validate

NS = {"x": "http://checklists.nist.gov/xccdf/1.2"}
DIGEST = "sha256:" + "ab" * 32


def _planted(root: Path) -> Crafted:
    """One failed file rule, with hostile names in the evidence, and a planted password in Env."""
    image = clean_image(root)
    image.write("/srv/<script>alert(1)</script>", "x", mode=0o666)
    image.write("/srv/tab\tand\x01control", "x", mode=0o666)
    image.image_config["Env"].append("API_KEY=s3cr3t")
    return image


def _result(image: Crafted, time: datetime | None = None) -> ComplianceResult:
    target = image.target()
    target.manifest_digest = DIGEST
    with target:
        return compliance(target, time=time)


@pytest.fixture
def result(tmp_path: Path) -> ComplianceResult:
    return _result(_planted(tmp_path / "image"))


def test_xccdf_validates_with_openscap(result: ComplianceResult, tmp_path: Path) -> None:
    path = tmp_path / "result.xml"
    path.write_bytes(to_xccdf(result))
    assert validate(path) == []


def test_openscap_validation_errors_are_caught(result: ComplianceResult, tmp_path: Path) -> None:
    # The validation helper must be able to fail: a rule-result naming no Rule is an error.
    path = tmp_path / "broken.xml"
    path.write_bytes(
        to_xccdf(result).replace(
            b'idref="xccdf_dev.bastion_rule_files_valid_owner" severity',
            b'idref="xccdf_dev.bastion_rule_nothing" severity',
        )
    )
    assert any("xccdf_dev.bastion_rule_nothing" in problem for problem in validate(path))


def test_xccdf_structure(result: ComplianceResult) -> None:
    root = etree.fromstring(to_xccdf(result))
    assert root.tag == "{http://checklists.nist.gov/xccdf/1.2}Benchmark"
    ids = root.xpath(
        "//x:Rule/@id | //x:Group/@id | //x:Profile/@id | //x:TestResult/@id | /x:Benchmark/@id",
        namespaces=NS,
    )
    assert all(
        re.fullmatch(r"xccdf_dev\.bastion_(rule|group|profile|testresult|benchmark)_.+", i) for i in ids
    )
    (test,) = root.xpath("x:TestResult", namespaces=NS)
    assert test.findtext("x:target", namespaces=NS) == "crafted:1"
    facts = {f.get("name"): f.text for f in test.xpath("x:target-facts/x:fact", namespaces=NS)}
    assert facts["urn:xccdf:fact:image:digest"] == DIGEST
    rule_results = test.xpath("x:rule-result", namespaces=NS)
    assert len(rule_results) == len(result.results)
    words = {r.get("idref"): r.findtext("x:result", namespaces=NS) for r in rule_results}
    assert words["xccdf_dev.bastion_rule_files_no_world_writable"] == "fail"
    assert words["xccdf_dev.bastion_rule_host_audit"] == "notapplicable"
    (score,) = test.xpath("x:score", namespaces=NS)
    assert score.get("system") == "urn:xccdf:scoring:default"
    assert float(score.text) == result.score
    messages = test.xpath(
        "x:rule-result[@idref='xccdf_dev.bastion_rule_files_no_world_writable']/x:message/text()",
        namespaces=NS,
    )
    assert any("<script>" in m for m in messages)
    assert any("\\u0001" in m for m in messages)  # a control character is escaped, not dropped


def test_default_model_score(result: ComplianceResult) -> None:
    # Two failures (files: 1 of 11 rules; image: 1 of 7); 6 areas scored (host has nothing scored):
    # the default model averages each Group, then the Groups (XCCDF 1.2 section 7.3.2.1).
    failed = {r.rule.name for r in result.results if r.result is Result.FAIL}
    assert failed == {"files_no_world_writable", "image_env_no_secrets"}
    expected = (4 * 100 + 100 * 10 / 11 + 100 * 6 / 7) / 6
    assert result.score == round(expected, 2)


def test_html_shows_the_counts_and_escapes_the_image(result: ComplianceResult) -> None:
    page = to_html(result)
    document = html.fromstring(page)
    assert document.xpath("//script") == []  # the planted file name is text, not markup
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for word in ("pass", "fail", "notapplicable"):
        (box,) = document.xpath(f"//*[@id='count-{word}']")
        assert box.text_content().strip().startswith(str(result.count(Result(word))))
    (score,) = document.xpath("//*[@id='score']")
    assert f"{result.score:.2f}" in score.text_content()
    assert "s3cr3t" not in page.decode()


def test_json_lists_every_rule(result: ComplianceResult) -> None:
    document = json.loads(to_json(result))
    assert len(document["rules"]) == len(result.results)
    by_name = {r["name"]: r for r in document["rules"]}
    world = by_name["files_no_world_writable"]
    assert world["result"] == "fail" and world["severity"] == "medium"
    assert any("<script>" in e for e in world["evidence"])
    assert by_name["files_world_writable_dirs_sticky"]["references"]["cci"] == ["CCI-001090"]
    assert document["summary"]["counts"]["fail"] == 2
    assert {r["result"] for r in document["rules"]} <= {w.value for w in Result}


def test_summary(result: ComplianceResult) -> None:
    info = summary(result)
    assert sum(info.counts.values()) == len(result.results)
    assert info.counts["fail"] == 2 and not info.passed
    assert info.profile == "bastion-container-baseline" and info.version == "1.0.0"
    assert info.digest == DIGEST
    assert info.line().startswith("bastion-container-baseline 1.0.0: ")


def test_same_input_at_a_given_time_gives_the_same_bytes(tmp_path: Path) -> None:
    # What the build does: it gives the image's creation time, so its attested reports are reproducible.
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = _result(_planted(tmp_path / "one"), when)
    second = _result(_planted(tmp_path / "two"), when)
    assert to_xccdf(first) == to_xccdf(second)
    assert to_html(first) == to_html(second)
    assert to_json(first) == to_json(second)
    assert first.time == first.ended == when
    assert b'start-time="2025-01-02T03:04:05Z" end-time="2025-01-02T03:04:05Z"' in to_xccdf(first)


def test_without_a_time_the_clock_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # a build's setting, not a scan's time
    before = datetime.now(UTC)
    result = _result(clean_image(tmp_path))
    # The report states whole seconds (XCCDF start-time, the HTML "evaluated" line).
    assert before.replace(microsecond=0) <= result.time <= result.ended <= datetime.now(UTC)


def test_openscap_renders_our_xccdf(result: ComplianceResult, tmp_path: Path) -> None:
    import shutil
    import subprocess

    oscap = shutil.which("oscap")
    if oscap is None:
        pytest.skip("OpenSCAP is not installed (apt-get install openscap-scanner)")
    path = tmp_path / "result.xml"
    path.write_bytes(to_xccdf(result))
    report = subprocess.run(
        [oscap, "xccdf", "generate", "report", str(path)], capture_output=True, check=True
    ).stdout
    assert b"xccdf_dev.bastion_rule_files_no_world_writable" in report
