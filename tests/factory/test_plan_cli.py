"""``bastion factory plan`` over a catalog on loopback upstreams: GitHub's API replayed, hostile
answers, the graph (from: chains, cycles, end of life) — through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.factory.conftest import GITHUB, Replay, Route

ETAG = {"ETag": 'W/"releases-1"', "Content-Type": "application/json", "X-RateLimit-Remaining": "59",
        "X-RateLimit-Reset": "4102444800"}  # fmt: skip


def _definition(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\ncontents: {{repositories: [{{uri: 'http://127.0.0.1:9/none', suites: [x]}}]}}\n{body}"
    )


def _plan(tmp_path: Path, replay: Replay, *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    result = run_cli("factory", "plan", "--catalog", str(tmp_path / "catalog"), "--format", "json", *args,
                     home=tmp_path / "home", env={"BASTION_GITHUB_API": replay.url})  # fmt: skip
    return result.code, json.loads(result.stdout) if result.code == 0 else {}, result.stderr


@pytest.fixture
def catalog(tmp_path: Path, replay: Replay) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    replay.routes["/repos/example/tool/releases"] = Route(200, (GITHUB / "releases.json").read_bytes(), ETAG)
    replay.routes["/repos/example/tool/tags"] = Route(200, (GITHUB / "tags.json").read_bytes(), {})
    _definition(
        directory,
        "tool",
        """\
track:
  - {kind: github-release, owner: example, repo: tool, match: '^v2\\.', vars: {TOOL: {value: v2.0.0}, TOOL_MINOR: {value: "2.0", capture: '^v(\\d+\\.\\d+)'}}}
  - {kind: github-tag, owner: example, repo: tool, match: '^v', vars: {TAG: {value: v2.0.1}}}
labels: {org.example.tool: "${TOOL}"}
""",
    )
    _definition(directory, "app", "from: tool\n")
    _definition(directory, "web", "from: app\n")
    _definition(directory, "other", "tags: [x]\n")
    return directory


def test_a_new_release_rebuilds_the_image_and_everything_from_it_in_order(
    tmp_path: Path, catalog: Path, replay: Replay
) -> None:
    code, plan, stderr = _plan(tmp_path, replay)
    assert code == 0, stderr
    trackers = {t["tracker"]: t for t in plan["trackers"]}
    # Drafts and prereleases are skipped; the newest matching release is v2.0.1.
    assert trackers["tool/track[0]"]["now"] == "v2.0.1"
    assert trackers["tool/track[0]"]["changes"] == {"TOOL": ["v2.0.0", "v2.0.1"]}
    assert trackers["tool/track[1]"]["now"] == "v2.0.1" and trackers["tool/track[1]"]["changes"] == {}
    assert [r["image"] for r in plan["rebuild"]] == ["tool", "app", "web"]
    assert plan["rebuild"][2]["reasons"] == ["after app (from: app)"]
    assert "3 images to rebuild" in stderr


def test_plan_writes_no_state(tmp_path: Path, catalog: Path, replay: Replay) -> None:
    _plan(tmp_path, replay)
    _code, plan, _ = _plan(tmp_path, replay)
    assert {t["stored"] for t in plan["trackers"]} == {None}
    # Nothing stored, so no validators sent: each plan asks unconditionally.
    assert [inm for path, inm in replay.requests if "releases" in path] == [None, None]


def test_rate_limit_spent_is_one_line_and_the_others_go_on(
    tmp_path: Path, catalog: Path, replay: Replay
) -> None:
    replay.routes["/repos/example/tool/releases"] = Route(
        403,
        b'{"message": "API rate limit exceeded"}',
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4102444800"},
    )
    code, plan, stderr = _plan(tmp_path, replay)
    assert code == 0
    assert "GitHub rate limit spent; not polling until 2100-01-01T00:00:00Z" in stderr
    trackers = {t["tracker"]: t for t in plan["trackers"]}
    assert trackers["tool/track[1]"]["now"] == "v2.0.1"


HOSTILE = {
    "garbage": Route(200, b"\x00\xff<html>not a version</html>\n"),
    "server-error": Route(500, b"oops"),
    "too-big": Route(200, b"1" * (2 * 1024 * 1024)),
    "unparsable": Route(200, b"version 1.2 (final)\n"),
    "json-garbage": Route(200, b"{not json"),
}


def test_hostile_upstreams_fail_one_tracker_each(tmp_path: Path, replay: Replay) -> None:
    directory = tmp_path / "catalog"
    directory.mkdir()
    for name, route in HOSTILE.items():
        replay.routes[f"/{name}"] = route
    replay.routes["/loop"] = Route(302, b"", {"Location": "/loop"})
    replay.routes["/good"] = Route(200, b"1.4.2\n", {"ETag": '"g"'})
    replay.routes["/doc.json"] = Route(200, b'{"releases": [{"version": "7.1"}]}')
    trackers = "\n".join(
        f"  - {{kind: url, url: '{replay.url}/{name}', vars: {{V{i}: {{value: '1'}}}}}}"
        for i, name in enumerate([*HOSTILE, "loop", "good"])
    )
    trackers += f"\n  - {{kind: json-url, url: '{replay.url}/doc.json', path: 'releases[0].version', vars: {{J: {{value: '7.0'}}}}}}"
    trackers += (
        f"\n  - {{kind: json-url, url: '{replay.url}/json-garbage', path: a, vars: {{K: {{value: '1'}}}}}}"
    )
    trackers += (
        f"\n  - {{kind: url, url: '{replay.url}/good', match: '^(\\d+)\\.', vars: {{M: {{value: '1'}}}}}}"
    )
    _definition(directory, "svc", f"track:\n{trackers}\n")
    code, plan, stderr = _plan(tmp_path, replay)
    assert code == 0, stderr
    errors = {t["tracker"]: t["error"] for t in plan["trackers"] if t["error"]}
    lines = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == len(errors) == 7, stderr
    assert "not UTF-8 text" in errors["svc/track[0]"]
    assert "HTTP 500" in errors["svc/track[1]"]
    assert "larger than 1,048,576 bytes" in errors["svc/track[2]"]
    assert "not a version ('version 1.2 (final)')" in errors["svc/track[3]"]
    assert "not a version ('{not json')" in errors["svc/track[4]"]
    assert "not valid JSON" in errors["svc/track[8]"]
    assert "redirect loop" in errors["svc/track[5]"]
    now = {t["tracker"]: t["now"] for t in plan["trackers"]}
    assert (now["svc/track[6]"], now["svc/track[7]"], now["svc/track[9]"]) == ("1.4.2", "7.1", "1")
    assert plan["rebuild"][0]["image"] == "svc"


def test_a_from_cycle_is_refused_with_the_cycle_named(tmp_path: Path, replay: Replay) -> None:
    directory = tmp_path / "catalog"
    directory.mkdir()
    _definition(directory, "a", "from: c\n")
    _definition(directory, "b", "from: a\n")
    _definition(directory, "c", "from: b\n")
    code, _, stderr = _plan(tmp_path, replay)
    assert code == 2
    assert "from: cycle:" in stderr and len(stderr.strip().splitlines()) == 1
    assert {"a", "b", "c"} <= set(stderr.split("cycle: ")[1].strip().split(" -> "))


def test_from_an_unknown_image_is_refused(tmp_path: Path, replay: Replay) -> None:
    directory = tmp_path / "catalog"
    directory.mkdir()
    _definition(directory, "a", "from: nowhere\n")
    code, _, stderr = _plan(tmp_path, replay)
    assert code == 2 and "a.yaml: from: no catalog definition 'nowhere'" in stderr


def test_an_image_past_end_of_life_is_not_rebuilt(tmp_path: Path, catalog: Path, replay: Replay) -> None:
    (catalog / "app.yaml").write_text(
        (catalog / "app.yaml").read_text() + "dates: {end-of-life: 2001-01-01}\n"
    )
    code, plan, stderr = _plan(tmp_path, replay)
    assert code == 0
    assert [r["image"] for r in plan["rebuild"]] == ["tool", "web"]
    assert plan["end-of-life"] == ["app"]
    assert "app: past its end of life, not rebuilt" in stderr
