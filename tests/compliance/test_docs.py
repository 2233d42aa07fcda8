"""docs/compliance.md stays true to the code: every rule of the catalogue is listed with its severity,
and every field of the attestation predicate is described."""

from __future__ import annotations

import re
from pathlib import Path

from bastion.compliance import RULES, evaluate_claims
from tests.compliance.crafted import clean_image
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "compliance.md"


def test_every_rule_is_listed_with_its_severity() -> None:
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (low|medium|high) \|", DOC.read_text(), re.MULTILINE))
    assert rows == {name: rule.severity.value for name, rule in RULES.items()}


def test_every_predicate_field_is_described(tmp_path: Path) -> None:
    with clean_image(tmp_path).target() as target:
        predicate = evaluate_claims(target, ["default"], [], time="2025-01-01T00:00:00Z").predicate
    # The first cell of each row of the fields table: `name`, or several: `score`, `maxScore`.
    cells = re.findall(r"^\| (`[^|]+`) \|", DOC.read_text(), re.MULTILINE)
    described = {name.strip("` ").removesuffix("[]") for cell in cells for name in cell.split(",")}
    (profile,) = predicate["profiles"]
    assert isinstance(profile, dict)
    fields = {*predicate, *profile, "outputs.xccdf", "outputs.html"} - {"outputs"}
    assert fields - described == set()
