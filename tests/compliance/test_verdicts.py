"""Truthful verdicts, through the ``bastion compliance`` command: no rule's reason may
contradict another rule's result, and the report states when the scan ran."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree, html

from tests.compliance.crafted import GROUP, Crafted, clean_image
from tests.compliance.oscap import require_oscap, validate
from tests.conftest import run_cli

#: Every command here reads a tree of a dozen files: a second is generous, a minute is a hang.
BOUND = 60.0


def _rules(image: Crafted, home: Path) -> dict[str, dict[str, Any]]:
    started = time.monotonic()
    report = run_cli("compliance", f"fs://{image.root}", "--format", "json", home=home)
    assert time.monotonic() - started < BOUND
    assert report.code == 0, report.stderr
    return {r["name"]: r for r in json.loads(report.stdout)["rules"]}


def _exit_code(image: Crafted, home: Path) -> tuple[int, str]:
    result = run_cli("compliance", f"fs://{image.root}", "--exit-code", home=home)
    assert result.code != 3, result.stderr
    return result.code, result.stdout + result.stderr


# -- reasons that contradict the report -------------------------------------------------------------


def test_pam_lockout_is_not_excused_by_locked_passwords_that_are_not_locked(tmp_path: Path) -> None:
    image = clean_image(tmp_path / "rootfs")
    clean = _rules(image, tmp_path / "home")
    assert clean["accounts_passwords_locked"]["result"] == "pass"
    assert clean["host_pam_lockout"]["result"] == "notapplicable"
    assert "every password is locked" in clean["host_pam_lockout"]["message"]

    shadow = (image.root / "etc/shadow").read_text().replace("root:*:", "root:$6$salt$hash:")
    (image.root / "etc/shadow").write_text(shadow)
    rules = _rules(image, tmp_path / "home")
    assert rules["accounts_passwords_locked"]["result"] == "fail"
    pam = rules["host_pam_lockout"]
    assert pam["result"] == "notchecked", pam
    assert "every password is locked" not in pam["message"]
    assert "usable password" in pam["message"] and "/etc/shadow: root" in pam["evidence"][0]


def test_a_system_file_of_another_group_is_not_owned_by_root(tmp_path: Path) -> None:
    image = clean_image(tmp_path / "rootfs")
    image.write("/etc/group", GROUP + "staff:x:50:\n")
    assert _rules(image, tmp_path / "home")["files_system_owned_by_root"]["result"] == "pass"
    os.chown(image.root / "usr/bin/python3", 0, 50)  # the tests run as root (fs:// reads lstat)
    rule = _rules(image, tmp_path / "home")["files_system_owned_by_root"]
    assert rule["result"] == "fail", rule
    assert rule["evidence"] == ["/usr/bin/python3 mode 0755 uid 0 gid 50: group staff is not root"]
    code, output = _exit_code(image, tmp_path / "home")
    assert code == 1 and "files_system_owned_by_root" in output


def test_a_nologin_shell_that_is_not_in_the_image_is_said_to_be_missing(tmp_path: Path) -> None:
    image = clean_image(tmp_path / "rootfs")
    rule = _rules(image, tmp_path / "home")["accounts_nologin_shells"]
    assert rule["result"] == "pass" and rule["message"].endswith("and it is in the image"), rule
    image.remove("/usr/sbin/nologin")
    rule = _rules(image, tmp_path / "home")["accounts_nologin_shells"]
    assert rule["result"] == "pass", rule
    assert "/usr/sbin/nologin is not in the image, so no account can start a shell at all" in rule["message"]
    assert "and it is in the image" not in rule["message"]


# -- the evaluation time is when the scan ran -------------------------------------------------------


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_a_scan_states_when_it_ran(tmp_path: Path) -> None:
    image = clean_image(tmp_path / "rootfs")
    home = tmp_path / "home"
    # The second is what the reports keep: compare with the clock truncated to it.
    before = datetime.now(UTC).replace(microsecond=0)
    xccdf = run_cli("compliance", f"fs://{image.root}", "--format", "xccdf", home=home)
    page = run_cli("compliance", f"fs://{image.root}", "--format", "html", home=home)
    report = run_cli("compliance", f"fs://{image.root}", "--format", "json", home=home)
    after = datetime.now(UTC)
    assert xccdf.code == page.code == report.code == 0, xccdf.stderr + page.stderr + report.stderr
    assert after - before < timedelta(seconds=3 * BOUND)

    ns = {"x": "http://checklists.nist.gov/xccdf/1.2"}
    (test,) = etree.fromstring(xccdf.stdout.encode()).xpath("//x:TestResult", namespaces=ns)
    start, end = _when(test.get("start-time")), _when(test.get("end-time"))
    assert before <= start <= end <= after, (start, end)

    meta = dict(
        (row[0].text_content(), row[1].text_content())
        for row in html.fromstring(page.stdout).xpath("//table[@class='meta']/tr")
    )
    found = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)Z", meta["evaluated"])
    assert found, meta["evaluated"]
    evaluated = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert before <= evaluated <= after

    document = json.loads(report.stdout)
    assert before <= _when(document["time"]) <= _when(document["end_time"]) <= after


# -- every report Bastion writes passes OpenSCAP's default validation -------------------------------

DEFINITION = """\
name: waived
image: test/waived
tags: ["1"]
platforms: [linux/amd64]
contents:
  packages: [base-files]
compliance:
  waivers:
    - rule: image_user_nonroot
      reason: the orchestrator runs it as uid 65532 (runAsUser), set outside the image
"""


def test_a_waived_report_passes_oscap_xccdf_validate(tmp_path: Path) -> None:
    oscap = require_oscap()
    image = clean_image(tmp_path / "rootfs")  # fs:// has no config: no User, so image_user_nonroot fails
    definition = tmp_path / "waived.yaml"
    definition.write_text(DEFINITION)
    out = tmp_path / "waived.xml"
    started = time.monotonic()
    result = run_cli(
        "compliance", f"fs://{image.root}", "--definition", str(definition), "--format", "xccdf",
        "-o", str(out), home=tmp_path / "home",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "(1 waived)" in result.stderr
    # As users run it: schema and schematron, nothing skipped.
    checked = subprocess.run(
        [oscap, "xccdf", "validate", str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert time.monotonic() - started < 3 * BOUND
    errors = [line for line in checked.stdout.splitlines() if line.startswith("Error")]
    assert checked.returncode == 0 and errors == [], (checked.returncode, errors[:3], checked.stderr)
    assert validate(out) == []
    ns = {"x": "http://checklists.nist.gov/xccdf/1.2"}
    root = etree.parse(str(out))
    (rule_result,) = root.xpath(
        "//x:rule-result[@idref='xccdf_dev.bastion_rule_image_user_nonroot']", namespaces=ns
    )
    assert rule_result.findtext("x:result", namespaces=ns) == "notselected"
    assert rule_result.xpath("x:message/text()", namespaces=ns)[0].startswith("the check's result: fail")
    (remark,) = root.xpath("//x:Profile/x:select[@selected='false']/x:remark/text()", namespaces=ns)
    assert remark == (
        f"waived by image definition {definition}: the orchestrator runs it as uid 65532 (runAsUser), "
        "set outside the image"
    )
