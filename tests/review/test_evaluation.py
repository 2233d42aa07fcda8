"""`bastion review diff` over every case of the evaluation set (tests/data/guardrail/, built into git
repositories and tarballs by tests/review/cases.py) prints the expected verdict and exits accordingly;
a planted problem is found by a rule of its family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.review.cases import Case, cases, materialise

CASES = cases()


def test_the_set_has_a_planted_and_a_benign_case_per_family() -> None:
    from bastion.review import FAMILIES

    for family in FAMILIES:
        planted = [c for c in CASES if c.family == family and c.planted]
        benign = [c for c in CASES if c.family == family and not c.planted]
        assert planted and benign, family
    for language in (".c", ".go", ".py", ".sh"):
        assert any(p.suffix == language for c in CASES for p in (c.root / "new").rglob("*")), language


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_review_diff_gives_the_expected_verdict(case: Case, tmp_path: Path) -> None:
    args = materialise(case, tmp_path)
    result = run_cli("review", "diff", *args, "--format", "json", home=tmp_path / "home")
    doc = json.loads(result.stdout)
    assert doc["verdict"] == case.expect, (case.about, doc["findings"])
    assert result.code == (0 if case.expect == "pass" else 1), result.stderr
    assert f": {case.expect} (score {doc['score']}" in result.stderr
    families = {f["family"] for f in doc["findings"] if f["contribution"] > 0}
    if case.planted:
        # The multiplier case counts through other families; the signal itself is listed.
        wanted = case.family
        assert wanted in families or any(f["family"] == wanted for f in doc["findings"]), doc["findings"]
    assert doc["score"] == round(sum(f["contribution"] for f in doc["findings"]), 2)


def test_a_first_time_author_raises_the_weight_of_the_findings_in_the_files_they_touched(
    tmp_path: Path,
) -> None:
    by_name = {c.name: c for c in CASES}
    scores = {}
    for name in ("new-author-weakens-build", "known-author-weakens-build"):
        work = tmp_path / name
        work.mkdir()
        result = run_cli(
            "review", "diff", *materialise(by_name[name], work), "--format", "json", home=tmp_path
        )
        scores[name] = json.loads(result.stdout)
    new, known = scores["new-author-weakens-build"], scores["known-author-weakens-build"]
    assert new["score"] == pytest.approx(known["score"] * 1.5)
    signal = [f for f in new["findings"] if f["rule"] == "CT001"]
    assert len(signal) == 1 and signal[0]["contribution"] == 0
    assert "newcomer@example.net" in signal[0]["text"]
    assert all(f["multiplier"] == 1.5 for f in new["findings"] if f["rule"] != "CT001")


def test_a_finding_shows_where_why_and_the_hunk(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.name == "c-goto-fail")
    args = materialise(case, tmp_path)
    doc = json.loads(run_cli("review", "diff", *args, "--format", "json", home=tmp_path).stdout)
    (finding,) = [f for f in doc["findings"] if f["rule"] == "CF001"]
    assert (finding["path"], finding["line"], finding["function"]) == (
        "lib/tls.c",
        12,
        "verify_key_exchange",
    )  # the check made dead
    assert "+        goto fail;" in finding["hunk"] and "CVE-2014-1266" in finding["why"]
    assert finding["contribution"] == 9.0 and doc["thresholds"] == {
        "review": 2.0, "block": 9.0, "new-contributor-multiplier": 1.5}  # fmt: skip
    table = run_cli("review", "diff", *args, home=tmp_path)
    assert table.code == 1 and "CF001" in table.stdout and "lib/tls.c:12" in table.stdout
    md = run_cli("review", "diff", *args, "--format", "markdown", home=tmp_path)
    assert "**Verdict: block** (score 9.0" in md.stdout and "```diff" in md.stdout


def test_the_predicate_names_versions_rules_findings_and_verdict(tmp_path: Path) -> None:
    from bastion.review import PREDICATE_TYPE, RULES, Git, predicate, review_versions

    case = next(c for c in CASES if c.name == "c-inverted-error-check")
    args = materialise(case, tmp_path)
    review = review_versions(args[0], args[1], Path(args[3]))
    doc = predicate(
        review, reviewer={"id": "alice@example.org", "decision": "approve", "reason": "upstream fix"}
    )
    assert PREDICATE_TYPE == "https://bastion.invalid/attestations/upstream-review/v1"
    assert doc["versions"] == {"old": "v1", "new": "v2"} and doc["verdict"] == "review"
    assert {r["id"] for r in doc["rules"]} == {r.id for r in RULES} and all(
        r["version"] >= 1 for r in doc["rules"]
    )
    assert [f["rule"] for f in doc["findings"]] == ["EH001"]  # type: ignore[union-attr]
    assert json.loads(json.dumps(doc)) == doc
    unchanged = review_versions("v2", "v2", Path(args[3]))
    assert (
        unchanged.findings == ()
        and unchanged.verdict.value == "pass"
        and len(Git(Path(args[3])).commit("v2")) == 40
    )


@pytest.mark.parametrize(
    ("first", "counted"), [("2023-12-20T00:00:00Z", True), ("2023-06-01T00:00:00Z", False)]
)
def test_a_recently_added_author_counts_as_new_and_an_established_one_does_not(
    tmp_path: Path, first: str, counted: bool
) -> None:
    """Issue 22: "a first-time or recently-added contributor" — an author whose first commit is within
    90 days (RECENT_DAYS) before the range's start raises the weight of the findings in their files."""
    from tests.review.cases import MAINTAINER, _copy, _git

    case = {c.name: c for c in CASES}["known-author-weakens-build"]
    repo, newcomer = tmp_path / "repo", "Jia Recent <recent@example.net>"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "AUTHORS").write_text("Alice Maintainer\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "start", when="2023-01-01T00:00:00Z")
    (repo / "README").write_text("typo fixed\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "docs", author=newcomer, when=first)
    _copy(case.root / "old", repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "release 1.0", author=MAINTAINER, when="2024-01-01T00:00:00Z")
    _git(repo, "tag", "v1")
    _copy(case.root / "new", repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "release 1.1", author=newcomer, when="2024-02-01T00:00:00Z")
    _git(repo, "tag", "v2")
    result = run_cli("review", "diff", "v1", "v2", "--repo", str(repo), "--format", "json", home=tmp_path)
    doc = json.loads(result.stdout)
    signal = [f for f in doc["findings"] if f["rule"] == "CT001"]
    if counted:
        assert len(signal) == 1 and "recent@example.net" in signal[0]["text"], doc["findings"]
        assert "first commit 12 days before this range" in signal[0]["detail"]
        assert all(f["multiplier"] == 1.5 for f in doc["findings"] if f["rule"] != "CT001")
    else:
        assert signal == [] and all(f["multiplier"] == 1 for f in doc["findings"]), doc["findings"]
