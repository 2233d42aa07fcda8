"""The commands as a user runs them: db import/status/update, cves with every output and exit code,
vex, on a built image and on SBOM files."""

from __future__ import annotations

import http.server
import json
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import REPO_ROOT, run_cli
from tests.vuln.helpers import (
    KEV,
    NODE_VEX,
    OPENVEX_SCHEMA,
    PYPI,
    TRACKER,
    run_vuln,
    tracker_release,
    write_tracker,
)


def _dist_info(root: Path, name: str, version: str) -> None:
    info = root / "usr/lib/python3/dist-packages" / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("clihome")
    result = run_vuln("db", "import", str(PYPI), str(KEV), str(TRACKER), home=home)
    assert result.code == 0, result.stderr
    assert "skipped:" in result.stderr and "KEV entries" in result.stderr
    return home


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    _dist_info(root, "pip", "21.0")
    _dist_info(root, "setuptools", "65.5.0")
    return root


def test_status(home: Path) -> None:
    result = run_vuln("db", "status", "--format", "json", home=home)
    assert result.code == 0
    data = json.loads(result.stdout)
    assert {s["name"] for s in data["sources"]} == {"osv", "kev", "debian-tracker"}
    # Each advisory in the data names one PyPI package; the withdrawn one and the two skipped add none.
    assert data["affected_by_ecosystem"]["PyPI"] == len(list(PYPI.rglob("*.yaml"))) - 3
    stale = run_vuln("db", "status", home=home, env={"BASTION_VULN_MAX_AGE_HOURS": "0.0000001"})
    assert "hours old" in stale.stderr


def test_cves_outputs_and_exit_codes(home: Path, tree: Path, tmp_path: Path) -> None:
    result = run_vuln("cves", f"fs://{tree}", "--format", "json", "--exit-code", home=home)
    assert result.code == 1, result.stderr
    data = json.loads(result.stdout)
    ids = {f["id"] for f in data["findings"]}
    assert {"CVE-2021-3572", "CVE-2023-5752", "CVE-2022-40897"} <= ids
    assert run_vuln("cves", f"fs://{tree}", "--format", "json", home=home).code == 0  # no --exit-code
    fixed = json.loads(
        run_vuln("cves", f"fs://{tree}", "--format", "json", "--only-unfixed", home=home).stdout
    )
    assert all(f["state"] != "fixed" for f in fixed["findings"])
    # VEX suppressing every finding turns --exit-code green, and the findings stay visible.
    statements = [{"vulnerability": {"name": f["id"]}, "products": [{"@id": f["package"]["purl"]}],
                   "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}
                  for f in data["findings"]]  # fmt: skip
    vex = tmp_path / "vex.json"
    vex.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/v",
                               "author": "Jane", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
                               "statements": statements}))  # fmt: skip
    quiet = run_vuln("cves", f"fs://{tree}", "--vex", str(vex), "--exit-code", "--format", "json", home=home)
    assert quiet.code == 0, quiet.stderr
    assert json.loads(quiet.stdout)["findings"] == [] and len(json.loads(quiet.stdout)["suppressed"]) == len(
        statements
    )
    table = run_vuln("cves", f"fs://{tree}", "--vex", str(vex), "--show-suppressed", home=home)
    assert "suppressed: not_affected" in table.stdout
    markdown = run_vuln("cves", f"fs://{tree}", "--format", "markdown", home=home)
    assert "| CVE-2021-3572 | pip | 21.0 | fixed | 21.1 |" in markdown.stdout
    cdx = run_vuln("cves", f"fs://{tree}", "--format", "cyclonedx-vex", home=home)
    assert cdx.code == 0 and json.loads(cdx.stdout)["bomFormat"] == "CycloneDX"


def test_malformed_vex_is_exit_2_with_the_schema_error(home: Path, tree: Path) -> None:
    result = run_vuln("cves", f"fs://{tree}", "--vex", str(NODE_VEX), "--exit-code", home=home)
    assert result.code == 2
    assert "invalid OpenVEX document: statements" in result.stderr and "uniqueItems" in result.stderr


def test_bad_input(home: Path, tmp_path: Path) -> None:
    assert run_vuln("cves", "fs:///nonexistent-dir", home=home).code == 2
    assert run_vuln("cves", "sbom:///nonexistent.json", home=home).code == 2
    assert run_vuln("cves", "fs:///", "--only-severity", "awful", home=home).code == 2
    assert run_vuln("cves", "fs:///", home=tmp_path).code == 2  # no database yet
    assert "no vulnerability database" in run_vuln("cves", "fs:///", home=tmp_path).stderr


def _sarif_schema(cache: Path) -> dict[str, object]:
    """The official SARIF 2.1.0 schema, as Microsoft's SARIF multitool package ships it (npm)."""
    target = cache / "sarif-2.1.0.json"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(["npm", "pack", "--silent", "@microsoft/sarif-multitool-linux@5.7.0"],
                                cwd=cache, capture_output=True, text=True, check=True).stdout.split()[-1]  # fmt: skip
        with tarfile.open(cache / packed) as archive:
            member = archive.extractfile("package/sarif-2.1.0.json")
            assert member is not None
            target.write_bytes(member.read())
        (cache / packed).unlink()
    return json.loads(target.read_text())  # type: ignore[no-any-return]


def _sarif(home: Path, tree: Path, tmp_path: Path) -> dict[str, object]:
    vex = tmp_path / "vex.json"
    vex.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/v",
                               "author": "Jane", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
                               "statements": [{"vulnerability": {"name": "CVE-2021-3572"},
                                               "products": [{"@id": "pkg:pypi/pip"}], "status": "fixed"}]}))  # fmt: skip
    result = run_vuln("cves", f"fs://{tree}", "--format", "sarif", "--vex", str(vex), home=home)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_sarif_required_structure(home: Path, tree: Path, tmp_path: Path) -> None:
    # SARIF 2.1.0 §3.13 (sarifLog: version, runs), §3.14 (run: tool), §3.19 (toolComponent: name),
    # §3.27 (result: message), §3.35 (suppression: kind).
    log = _sarif(home, tree, tmp_path)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]  # type: ignore[index]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "bastion"
    for item in run["results"]:
        assert item["message"]["text"] and rules[item["ruleIndex"]]["id"] == item["ruleId"]
    suppressed = [r for r in run["results"] if r.get("suppressions")]
    assert [r["ruleId"] for r in suppressed] == ["CVE-2021-3572"] and suppressed[0]["suppressions"][0][
        "kind"
    ] == "external"


@pytest.mark.network
def test_sarif_validates_against_the_official_schema(home: Path, tree: Path, tmp_path: Path) -> None:
    schema = _sarif_schema(REPO_ROOT / ".cache" / "sarif-schema")
    errors = list(Draft202012Validator(schema).iter_errors(_sarif(home, tree, tmp_path)))
    assert errors == []


@pytest.mark.mirror
@pytest.mark.slow
def test_built_image_sbom_files_and_vex(cached_home: Path, tmp_path: Path) -> None:
    built = run_cli("build", "catalog/python/python.yaml", "--locked", "--platform", "linux/amd64", "--skip-tests",
                    home=cached_home, cwd=REPO_ROOT)  # fmt: skip
    assert built.code == 0, built.stderr
    image = f"oci-dir://{cached_home / 'store'}:bastion/python:3.11-dev"
    sbom = run_cli("sbom", image, "--platform", "linux/amd64", "--format", "spdx-json", home=cached_home)
    assert sbom.code == 0, sbom.stderr
    packages = json.loads(sbom.stdout)["packages"]
    purls = [r["referenceLocator"] for p in packages for r in p.get("externalRefs", [])]
    from packageurl import PackageURL

    version = next(
        PackageURL.from_string(p).version for p in purls if p.startswith("pkg:deb/debian/libssl3@")
    )
    assert version
    # Real shapes, real package: a fix above the shipped version, one below it, and a no-dsa.
    feed = write_tracker(tmp_path / "tracker.json", {"openssl": {
        "CVE-2999-0001": tracker_release("resolved", fixed_version=version + "+z1", urgency="high"),
        "CVE-2999-0002": tracker_release("resolved", fixed_version="3.0.0-1", urgency="low"),
        "CVE-2999-0003": tracker_release("open", urgency="low", nodsa="Minor issue", nodsa_reason=""),
    }})  # fmt: skip
    home = tmp_path / "home"
    assert run_vuln("db", "import", str(feed), home=home).code == 0
    spdx, cdx = tmp_path / "image.spdx.json", tmp_path / "image.cdx.json"
    spdx.write_text(sbom.stdout)
    cdx.write_text(
        run_cli(
            "sbom", image, "--platform", "linux/amd64", "--format", "cyclonedx-json", home=cached_home
        ).stdout
    )
    for source in (f"sbom://{spdx}", f"sbom://{cdx}"):
        result = run_vuln("cves", source, "--format", "json", home=home)
        assert result.code == 0, result.stderr
        found = {(f["id"], f["state"]) for f in json.loads(result.stdout)["findings"]}
        assert ("CVE-2999-0001", "fixed") in found and ("CVE-2999-0003", "no-dsa") in found
        assert not any(i == "CVE-2999-0002" for i, _ in found)
    vex = run_vuln("vex", f"sbom://{spdx}", home=home)
    assert vex.code == 0, vex.stderr
    document = json.loads(vex.stdout)
    assert list(Draft202012Validator(json.loads(OPENVEX_SCHEMA.read_text())).iter_errors(document)) == []
    assert {s["vulnerability"]["name"]: s["status"] for s in document["statements"]}[
        "CVE-2999-0002"
    ] == "fixed"
    # What the image's maintainers state in its definition replaces what Bastion would say, with
    # the author kept; a statement about a package the image lacks is left out; and applied back
    # as VEX, it suppresses the finding and changes the exit code.
    definition = tmp_path / "image.yaml"
    definition.write_text(
        "name: image\ncontents: {packages: [libssl3]}\nvex:\n"
        "  - vulnerability: CVE-2999-0003\n    status: not_affected\n"
        "    justification: vulnerable_code_not_in_execute_path\n"
        '    author: "Platform security <sec@example.invalid>"\n'
        '    packages: ["pkg:deb/debian/libssl3", "pkg:deb/debian/openssl"]\n'
        "  - {vulnerability: CVE-2999-0001, status: not_affected, author: someone,\n"
        '     impact-statement: "not shipped", packages: ["pkg:deb/debian/not-in-this-image"]}\n'
    )
    people = run_vuln("vex", f"sbom://{spdx}", "--definition", str(definition), home=home)
    assert people.code == 0, people.stderr
    authored = json.loads(people.stdout)
    assert list(Draft202012Validator(json.loads(OPENVEX_SCHEMA.read_text())).iter_errors(authored)) == []
    by_id = {s["vulnerability"]["name"]: s for s in authored["statements"]}
    assert by_id["CVE-2999-0003"]["status"] == "not_affected"
    assert "Platform security <sec@example.invalid>" in by_id["CVE-2999-0003"]["status_notes"]
    assert by_id["CVE-2999-0001"]["status"] == "affected"  # Bastion's own verdict: the other statement
    (tmp_path / "people.vex.json").write_text(people.stdout)
    before = run_vuln("cves", f"sbom://{spdx}", "--exit-code", home=home)
    after = run_vuln(
        "cves",
        f"sbom://{spdx}",
        "--vex",
        str(tmp_path / "people.vex.json"),
        "--only-unfixed",
        "--exit-code",
        home=home,
    )
    assert before.code != 0 and after.code == 0, after.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nvex:\n  - {vulnerability: CVE-2999-0003, status: not_affected, author: me}\n")
    refused = run_vuln("vex", f"sbom://{spdx}", "--definition", str(bad), home=home)
    assert refused.code != 0 and "bad.yaml:3: vex[0]: a not_affected statement needs a justification" in (
        refused.stderr
    )


class _ETagHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with an ETag and answers If-None-Match (RFC 9110 §13.1.2); records the requests."""

    seen: list[dict[str, str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        path = Path(self.translate_path(self.path))
        etag = f'"{path.stat().st_mtime_ns}-{path.stat().st_size}"' if path.is_file() else None
        if etag and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        if etag is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    import functools
    import shutil
    import zipfile

    import yaml

    served = tmp_path / "served"
    (served / "PyPI").mkdir(parents=True)
    with zipfile.ZipFile(served / "PyPI" / "all.zip", "w") as archive:  # the shape OSV publishes
        for path in sorted((PYPI / "pip").glob("*.yaml")):
            record = yaml.load(path.read_text(), Loader=yaml.BaseLoader)
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    shutil.copy(KEV, served / "kev.json")
    shutil.copy(TRACKER, served / "tracker.json")
    _ETagHandler.seen = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_ETagHandler, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_update_downloads_then_uses_etags(feed_server: tuple[str, Path], tmp_path: Path) -> None:
    base, served = feed_server
    config = tmp_path / "vuln.toml"
    config.write_text(
        "max-age-hours = 48\n"
        + "".join(
            f'[[feed]]\nurl = "{base}/{name}"\n' for name in ("PyPI/all.zip", "kev.json", "tracker.json")
        )
    )
    env = {"BASTION_VULN_CONFIG": str(config)}
    home = tmp_path / "home"
    first = run_vuln("db", "update", home=home, env=env)
    assert first.code == 0, first.stderr
    assert first.stderr.count("downloaded") == 3 and "KEV entries" in first.stderr
    second = run_vuln("db", "update", home=home, env=env)
    assert second.code == 0 and second.stderr.count("unchanged") == 3, second.stderr
    assert all("If-None-Match" in headers for headers in _ETagHandler.seen[3:])
    status = json.loads(run_vuln("db", "status", "--format", "json", home=home, env=env).stdout)
    assert {s["location"] for s in status["sources"]} == {
        f"{base}/PyPI/all.zip",
        f"{base}/kev.json",
        f"{base}/tracker.json",
    }
    (served / "kev.json").write_text(
        (served / "kev.json").read_text().replace("CVE-2025-48384", "CVE-2025-99999")
    )
    third = run_vuln("db", "update", home=home, env=env)
    assert third.stderr.count("downloaded") == 1, third.stderr


def test_update_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    config = tmp_path / "vuln.toml"
    config.write_text('[[feed]]\nurl = "http://feeds.example.invalid/all.zip"\n')
    result = run_vuln("db", "update", home=tmp_path / "home", env={"BASTION_VULN_CONFIG": str(config)})
    assert result.code == 2 and "not HTTPS" in result.stderr
