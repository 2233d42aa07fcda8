"""``debian-package`` trackers and transitive lock monitoring against a signed loopback repository."""

from __future__ import annotations

import json
from pathlib import Path

from bastion.config import Settings
from bastion.factory import load_catalog, open_state, poll
from tests.conftest import SigningKey, run_cli
from tests.factory.signed_repo import serve_repo, write_lock, write_repo


def _catalog(tmp_path: Path, url: str, key: SigningKey) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    repo = f"contents: {{repositories: [{{uri: '{url}', suites: [bookworm]}}], keyring: '{key.keyring}'}}\n"
    (directory / "ssl.yaml").write_text(
        "name: ssl\n"
        + repo
        + "track:\n  - {kind: debian-package, package: libssl3, vars: {SSL: {value: 3.0.13-1~deb12u1}}}\n"
        "  - {kind: debian-package, package: libc6, vars: {LIBC: {value: 2.36-9+deb12u7}}}\n"
    )
    (directory / "net.yaml").write_text(
        "name: net\n" + repo + "contents-note: x\n".replace("contents-note: x\n", "")
    )
    write_lock(directory / "net.yaml", url, {"netbase": "6.4", "libgcc-s1": "12.2.0-14"})
    (directory / "app.yaml").write_text("name: app\n" + repo + "from: net\n")
    return directory


def test_unchanged_repository_plans_nothing_and_a_new_version_cascades(
    tmp_path: Path, test_key: SigningKey
) -> None:
    root = tmp_path / "mirror"
    write_repo(root, test_key.clearsign, {})
    with serve_repo(root) as served:
        directory = _catalog(tmp_path, served.url, test_key)
        home = tmp_path / "home"
        result = run_cli("factory", "plan", "--catalog", str(directory), "--format", "json", home=home)
        assert result.code == 0, result.stderr
        plan = json.loads(result.stdout)
        assert plan["rebuild"] == []
        assert {t["now"] for t in plan["trackers"]} == {"3.0.13-1~deb12u1", "2.36-9+deb12u7"}
        # One suite: one InRelease request, however many trackers and locks use it.
        assert served.count("/InRelease") == 1

        write_repo(
            root, test_key.clearsign, {"libgcc-s1": "12.2.0-14+deb12u1", "libssl3": "3.0.15-1~deb12u1"}
        )
        result = run_cli("factory", "plan", "--catalog", str(directory), "--format", "json", home=home)
        plan = json.loads(result.stdout)
        rebuild = {r["image"]: r["reasons"] for r in plan["rebuild"]}
        assert list(rebuild) == ["net", "app", "ssl"] or list(rebuild) == ["net", "ssl", "app"]
        # Transitive: net tracks nothing, but its lock holds libgcc-s1.
        assert rebuild["net"] == ["locked libgcc-s1 (amd64) 12.2.0-14 -> 12.2.0-14+deb12u1"]
        assert rebuild["app"] == ["after net (from: net)"]
        assert rebuild["ssl"] == ["track[0] debian-package: SSL 3.0.13-1~deb12u1 -> 3.0.15-1~deb12u1"]


def test_recorded_polls_ask_conditionally_one_request_per_suite(tmp_path: Path, test_key: SigningKey) -> None:
    root = tmp_path / "mirror"
    write_repo(root, test_key.clearsign, {})
    with serve_repo(root) as served:
        catalog = load_catalog(_catalog(tmp_path, served.url, test_key))
        settings = Settings(tmp_path / "home")
        with open_state(settings) as state:
            first = poll(catalog, settings, state.trackers())
            state.record(first.states())
            before = len(served.requests)
            second = poll(catalog, settings, state.trackers())
        assert served.requests[before:] == [("/dists/bookworm/InRelease", 304)]
        assert second.requests == 1
        assert [p.result for _, p in second.trackers] == [p.result for _, p in first.trackers]


def test_a_tampered_inrelease_fails_the_trackers_with_one_line(tmp_path: Path, test_key: SigningKey) -> None:
    root = tmp_path / "mirror"
    write_repo(root, test_key.clearsign, {})
    inrelease = root / "dists" / "bookworm" / "InRelease"
    inrelease.write_bytes(inrelease.read_bytes().replace(b"Codename: bookworm", b"Codename: bookwurm"))
    with serve_repo(root) as served:
        result = run_cli("factory", "plan", "--catalog", str(_catalog(tmp_path, served.url, test_key)),
                         home=tmp_path / "home")  # fmt: skip
    assert result.code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("InRelease signature is BAD" in line for line in warnings), (
        result.stderr
    )
