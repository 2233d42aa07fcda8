"""The factory's review gate (issue 22, "Shown when done"): a github-tag tracker (GitHub's API replayed on
loopback) proposes an upstream version whose diff plants an inverted error check; ``factory run``
stops at the gate with the review's id; ``review approve`` lets the next run build and publish it to a
loopback docker-registry carrying the signed upstream-review attestation, which ``attest get --verify``
and ``verify --policy`` see; a later version that is rejected is closed, and the image published
before stays current. Through the real ``bastion`` command; one image is built for the module."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import CliResult, home_sharing_cache, run_cli
from tests.factory.conftest import Replay, Route
from tests.registry.conftest import RegistryProcess
from tests.review.cases import _git as git
from tests.review.cases import cases, git_repo

pytestmark = pytest.mark.mirror

DEFINITION = """\
name: tool
image: bastion/tool
tags: ["latest", "v${{VERSION}}"]
platforms: [linux/amd64]
labels: {{org.example.tool.version: "${{VERSION}}"}}
track:
  - kind: github-tag
    owner: example
    repo: tool
    match: '^v\\d+$'
    vars: {{VERSION: {{value: '1', capture: '^v(\\d+)$'}}}}
    review: {{repo: ../c-inverted-error-check.git-work, ref: 'v${{VERSION}}'{policy}}}
contents:
  packages: [media-types]
"""
FOOTER = """
int check_footer(const unsigned char *buf, size_t len)
{
    int err;

    err = read_footer(buf, len);
    if (err == 0)
        return err;
    return 0;
}
"""
WAITING = re.compile(r"review ([0-9a-f]{12}): verdict review \(score [0-9.]+\): waiting for review")


def _tags(replay: Replay, repo: Path, names: list[str]) -> None:
    """GitHub's ``GET /repos/{owner}/{repo}/tags`` for ``names`` (newest first), in the API's shape."""
    import subprocess

    def sha(tag: str) -> str:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{tag}^{{commit}}"], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return out.stdout.strip()

    body = [{"name": n, "zipball_url": f"{replay.url}/repos/example/tool/zipball/refs/tags/{n}",
             "tarball_url": f"{replay.url}/repos/example/tool/tarball/refs/tags/{n}",
             "commit": {"sha": sha(n), "url": f"{replay.url}/repos/example/tool/commits/{sha(n)}"},
             "node_id": "MDM6UmVm"} for n in names]  # fmt: skip
    replay.routes["/repos/example/tool/tags"] = Route(
        200, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )


def _catalog(tmp_path: Path, policy: str = "") -> tuple[Path, Path]:
    case = {c.name: c for c in cases()}["c-inverted-error-check"]
    repo = git_repo(case, tmp_path)  # tags v1 and v2: v2 inverts `if (err != 0) return err;`
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "tool.yaml").write_text(DEFINITION.format(policy=policy))
    return catalog, repo


def _run(catalog: Path, home: Path, replay: Replay, registry: RegistryProcess) -> CliResult:
    env = {"BASTION_GITHUB_API": replay.url, "BASTION_FACTORY_REGISTRY": registry.host}
    result = run_cli("factory", "run", "--once", "--catalog", str(catalog), home=home, env=env)
    assert result.code == 0, result.stderr
    return result


def _waiting(home: Path) -> str:
    status = run_cli("factory", "status", home=home).stdout
    found = WAITING.search(status)
    assert found is not None and " review (attempts: 0)" in status, status
    return found.group(1)


def test_a_flagged_upstream_change_waits_for_approval_and_a_rejected_one_leaves_the_image(
    tmp_path: Path, cached_home: Path, replay: Replay, registry: RegistryProcess
) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    catalog, repo = _catalog(tmp_path)
    _tags(replay, repo, ["v2", "v1"])

    first = _run(catalog, home, replay, registry)
    assert first.stdout.strip() == "", first.stdout  # no job ran
    assert "tool: review" in first.stderr and "waiting for review" in first.stderr
    review_id = _waiting(home)
    assert "value: '1'" in (catalog / "tool.yaml").read_text()  # nothing merged
    listed = json.loads(run_cli("review", "list", "--format", "json", home=home).stdout)
    assert [(r["id"], r["status"], r["verdict"]) for r in listed] == [(review_id, "pending", "review")]
    shown = json.loads(run_cli("review", "show", review_id, home=home).stdout)
    assert shown["predicate"]["versions"] == {"old": "v1", "new": "v2"}
    assert [f["rule"] for f in shown["predicate"]["findings"]] == ["EH001"]

    again = _run(catalog, home, replay, registry)  # still waiting: the same review, no second job
    assert again.stdout.strip() == "" and review_id in again.stderr
    assert _waiting(home) == review_id
    assert len(json.loads(run_cli("factory", "status", "--format", "json", home=home).stdout)["jobs"]) == 1

    approved = run_cli("review", "approve", review_id, "--reviewer", "alice@example.org",
                       "--reason", "the inverted check is the intended fast path", home=home)  # fmt: skip
    assert approved.code == 0, approved.stderr
    built = _run(catalog, home, replay, registry)
    assert built.stdout.split() == ["tool", "done"], built.stdout + built.stderr
    assert "value: '2'" in (catalog / "tool.yaml").read_text()

    image = f"registry://{registry.host}/bastion/tool:v2"
    key = str(home / "keys" / "bastion.pub")
    listing = run_cli("attest", "list", image, "--format", "json", home=home)
    assert listing.code == 0, listing.stderr
    types = [a["predicateType"] for a in json.loads(listing.stdout)["attestations"]]
    assert "https://bastion.invalid/attestations/upstream-review/v1" in types, types
    got = run_cli("attest", "get", image, "--predicate-type", "upstream-review", "--verify", "--key", key,
                  home=home)  # fmt: skip
    assert got.code == 0, got.stderr
    predicate = json.loads(got.stdout)
    assert predicate["versions"] == {"old": "v1", "new": "v2"} and predicate["verdict"] == "review"
    assert [f["rule"] for f in predicate["findings"]] == ["EH001"]
    assert all("version" in r for r in predicate["rules"])
    assert predicate["reviewer"]["reviewer"] == "alice@example.org"
    assert predicate["reviewer"]["reason"] == "the inverted check is the intended fast path"
    policy = tmp_path / "policy.yaml"
    policy.write_text("required: [spdx, provenance, upstream-review]\nconditions:\n"
                      "  - {predicate: upstream-review, path: reviewer.decision, equals: approve}\n")  # fmt: skip
    verified = run_cli("verify", image, "--key", key, "--policy", str(policy), home=home)
    assert verified.code == 0, verified.stdout + verified.stderr

    # Scenario 2: v3 plants another inverted check; the reviewer rejects it.
    (repo / "src" / "load.c").write_text((repo / "src" / "load.c").read_text() + FOOTER)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "footer check", when="2024-03-01T00:00:00Z")
    git(repo, "tag", "v3")
    _tags(replay, repo, ["v3", "v2", "v1"])
    published = json.loads(run_cli("factory", "status", "--format", "json", home=home).stdout)["publications"]
    assert len(published) == 1
    _run(catalog, home, replay, registry)
    second_id = _waiting(home)
    assert second_id != review_id
    rejected = run_cli("review", "reject", second_id, "--reviewer", "bob@example.org",
                       "--reason", "a second inverted check: not without upstream's answer", home=home)  # fmt: skip
    assert rejected.code == 0, rejected.stderr
    closed = _run(catalog, home, replay, registry)
    assert closed.stdout.strip() == "" and "rejected by bob@example.org" in closed.stderr
    status = json.loads(run_cli("factory", "status", "--format", "json", home=home).stdout)
    assert status["publications"] == published  # the previous image stays current
    (job,) = [j for j in status["jobs"] if j["status"] == "rejected"]
    assert "a second inverted check" in job["error"]
    assert "value: '2'" in (catalog / "tool.yaml").read_text()
    latest = run_cli("attest", "get", f"registry://{registry.host}/bastion/tool:latest",
                     "--predicate-type", "upstream-review", "--verify", "--key", key, home=home)  # fmt: skip
    assert json.loads(latest.stdout)["versions"]["new"] == "v2"
    later = _run(catalog, home, replay, registry)  # the rejected change is not proposed again
    assert later.stdout.strip() == "" and "already a job" in later.stderr


def test_the_definition_policy_decides_a_verdict_without_a_person(
    tmp_path: Path, cached_home: Path, replay: Replay, registry: RegistryProcess
) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    catalog, repo = _catalog(tmp_path, ", policy: {review: block}")
    _tags(replay, repo, ["v2", "v1"])
    result = _run(catalog, home, replay, registry)
    assert "rejected by guardrail: verdict review: the definition's review policy says block" in result.stderr
    status = json.loads(run_cli("factory", "status", "--format", "json", home=home).stdout)
    assert [j["status"] for j in status["jobs"]] == ["rejected"] and status["publications"] == []
    assert (
        json.loads(run_cli("review", "list", "--format", "json", home=home).stdout) == []
    )  # nothing pending
    assert "value: '1'" in (catalog / "tool.yaml").read_text()


def test_a_review_source_that_cannot_be_read_is_one_line_and_no_job(
    tmp_path: Path, cached_home: Path, replay: Replay, registry: RegistryProcess
) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    catalog, _repo = _catalog(tmp_path)
    # v9: a tag the local mirror does not have.
    replay.routes["/repos/example/tool/tags"] = Route(
        200, json.dumps([{"name": "v9", "commit": {"sha": "0" * 40}}]).encode(), {}
    )
    result = _run(catalog, home, replay, registry)
    assert "tool: upstream review:" in result.stderr and "v9" in result.stderr, result.stderr
    assert json.loads(run_cli("factory", "status", "--format", "json", home=home).stdout)["jobs"] == []
