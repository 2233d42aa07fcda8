"""The review queue through the command: a flagged change waits as pending, `approve` and `reject`
record who decided and why, a decision is final, and the predicate carries the reviewer."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.review.cases import cases, materialise


def _case_args(name: str, work: Path) -> list[str]:
    work.mkdir()
    return materialise(next(c for c in cases() if c.name == name), work)


def test_a_flagged_change_waits_and_a_decision_is_recorded_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flagged = run_cli("review", "diff", *_case_args("c-inverted-error-check", tmp_path / "a"), "--submit",
                      "proposal zlib 1.3.1", "--format", "json", home=home)  # fmt: skip
    assert flagged.code == 1
    passed = run_cli("review", "diff", *_case_args("c-error-refactor", tmp_path / "b"), "--submit", "proposal b",
                     "--format", "json", home=home)  # fmt: skip
    assert passed.code == 0
    pending = json.loads(run_cli("review", "list", "--format", "json", home=home).stdout)
    assert [(e["subject"], e["status"], e["verdict"]) for e in pending] == [
        ("proposal zlib 1.3.1", "pending", "review")
    ]
    everything = json.loads(run_cli("review", "list", "--all", "--format", "json", home=home).stdout)
    assert sorted(e["status"] for e in everything) == ["passed", "pending"]
    review_id = pending[0]["id"]
    assert f"review {review_id}: pending" in flagged.stderr

    refused = run_cli("review", "reject", review_id, home=home)
    assert refused.code == 2 and "Missing option '--reason'" in refused.stderr
    approved = run_cli("review", "approve", review_id, "--reason", "upstream's own fix, checked by hand",
                       "--reviewer", "alice@example.org", home=home)  # fmt: skip
    assert approved.code == 0 and "approved by alice@example.org" in approved.stderr
    again = run_cli("review", "reject", review_id, "--reason", "changed my mind", home=home)
    assert again.code == 2 and f"review {review_id} is approved" in again.stderr

    record = json.loads(run_cli("review", "show", review_id, home=home).stdout)
    assert record["status"] == "approved"
    assert record["decision"]["reviewer"] == "alice@example.org"
    assert record["decision"]["reason"] == "upstream's own fix, checked by hand"
    assert [f["rule"] for f in record["predicate"]["findings"]] == ["EH001"]
    assert record["predicate"]["versions"] == {"old": "v1", "new": "v2"}

    from bastion.review import ReviewQueue

    assert ReviewQueue(home).get(review_id).predicate()["reviewer"]["decision"] == "approve"


def test_unknown_and_malformed_ids_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for bad, words in (("../../etc/passwd", "not a review id"), ("0123456789ab", "no review 0123456789ab")):
        result = run_cli("review", "show", bad, home=home)
        assert result.code == 2 and words in result.stderr, result.stderr
    (home / "reviews").mkdir(parents=True)
    (home / "reviews" / "0123456789ab.json").write_text("{not json")
    result = run_cli("review", "approve", "0123456789ab", home=home)
    assert result.code == 2 and "0123456789ab.json: not valid JSON" in result.stderr
