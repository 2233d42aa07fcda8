"""Red-team regressions for the factory's trackers, through ``bastion factory plan``: an upstream that
answers with YAML or shell syntax as its version, and one that drips its answer a byte at a time."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import run_cli
from tests.factory.conftest import Replay, Route

# Each is printable ASCII without spaces, which the trackers took as a version: the first, written
# into the definition as `value: '<it>'` by a proposal, closed the quote and added a variable.
HOSTILE_VERSIONS = ["1',X:{value:'2", '2"}', "$(id)", "3;id", "${HOME}", "../../etc/passwd", "-oProxyCommand=id",
                    "4`id`", "5|id", "6#"]  # fmt: skip


def _plan(tmp_path: Path, body: str) -> tuple[dict, str, float]:  # type: ignore[type-arg]
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    (catalog / "svc.yaml").write_text(
        "name: svc\ncontents: {repositories: [{uri: 'http://127.0.0.1:9/none', suites: [x]}]}\n" + body
    )
    result = run_cli("factory", "plan", "--catalog", str(catalog), "--format", "json", home=tmp_path / "home")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result.stderr, result.seconds


def test_versions_carrying_yaml_or_shell_syntax_are_refused(tmp_path: Path, replay: Replay) -> None:
    trackers = []
    for i, version in enumerate(HOSTILE_VERSIONS):
        replay.routes[f"/text{i}"] = Route(200, version.encode() + b"\n")
        replay.routes[f"/doc{i}.json"] = Route(200, json.dumps({"v": version}).encode())
        trackers.append(f"  - {{kind: url, url: '{replay.url}/text{i}', vars: {{T{i}: {{value: '1'}}}}}}")
        trackers.append(
            f"  - {{kind: json-url, url: '{replay.url}/doc{i}.json', path: v, vars: {{J{i}: {{value: '1'}}}}}}"
        )
    replay.routes["/fine"] = Route(200, b"sha256:" + b"a" * 64 + b"\n")
    trackers.append(f"  - {{kind: url, url: '{replay.url}/fine', vars: {{D: {{value: '1'}}}}}}")
    plan, stderr, _ = _plan(tmp_path, "track:\n" + "\n".join(trackers) + "\n")
    rows = {t["tracker"]: t for t in plan["trackers"]}
    for i in range(2 * len(HOSTILE_VERSIONS)):
        row = rows[f"svc/track[{i}]"]
        assert row["now"] is None and "the answer is not a version" in row["error"], row
    assert rows[f"svc/track[{2 * len(HOSTILE_VERSIONS)}]"]["now"] == "sha256:" + "a" * 64
    assert stderr.count("warning:") == 2 * len(HOSTILE_VERSIONS)


@contextmanager
def _dripping() -> Iterator[str]:
    """Headers at once, then the body one byte every 0.2 s: each read is within httpx's timeouts."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100000):
                    self.wfile.write(b"1")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_dripped_a_byte_at_a_time_meets_the_deadline(tmp_path: Path) -> None:
    """The deadline was checked once per 64 KiB of body: 0.2 s a byte kept a plan waiting ~3.6 hours."""
    with _dripping() as url:
        plan, _, seconds = _plan(
            tmp_path, f"track:\n  - {{kind: url, url: '{url}/v', vars: {{V: {{value: '1'}}}}}}\n"
        )
    assert "no complete answer within 20 s" in plan["trackers"][0]["error"]
    assert seconds < 60
