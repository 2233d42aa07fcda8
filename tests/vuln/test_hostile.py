"""Hostile feeds, databases, images and SBOM files, through the real ``bastion`` command:
nothing a feed or an image holds makes ``db import`` or ``cves`` end with an internal error (exit 3).
A bad record is skipped and counted at import; what an older import let through is left out of a
scan with a warning; a package whose version does not parse (or that has none) is reported and
matched by the records that need no ordering."""

from __future__ import annotations

import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bastion.debian import is_debian_version
from bastion.vuln._versions import VersionError, parse
from tests.conftest import CliResult, run_cli
from tests.vuln.helpers import tracker_release, write_tracker

#: No hostile input may take a command longer than this (start-up included).
BOUND_SECONDS = 60.0


def _timed(*args: str, home: Path) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home)
    assert time.monotonic() - started < BOUND_SECONDS, args
    assert result.code != 3 and "internal error" not in result.stderr, result.stderr
    return result


def _feed(path: Path) -> Path:
    """A tracker feed: openssl open in bookworm (every version affected), zlib fixed in 1.3-1."""
    return write_tracker(
        path,
        {
            "openssl": {"CVE-2099-1001": tracker_release("open", urgency="high")},
            "zlib": {"CVE-2099-1002": tracker_release("resolved", fixed_version="1.3-1", urgency="low")},
        },
    )


def _osv(ident: str, **fields: Any) -> dict[str, Any]:
    return {"id": ident, "modified": "2024-01-01T00:00:00Z", **fields}


def _debian_range(fixed: str) -> list[dict[str, Any]]:
    return [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]  # fmt: skip


def _image(root: Path, status: bytes) -> str:
    """A bookworm file tree whose dpkg database is ``status``, as ``fs://``."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_bytes(status)
    return f"fs://{root}"


def _paragraph(name: str, *lines: str) -> bytes:
    return "\n".join(
        [f"Package: {name}", "Status: install ok installed", "Architecture: amd64", *lines, ""]
    ).encode()


def _database(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert _timed("db", "import", str(_feed(tmp_path / "feed.json")), home=home).code == 0
    return home


# Each record is valid JSON but not what the format says; a scan used to end with exit 3
# on the first three, and the import itself on the last three.
HOSTILE_RECORDS = {
    "tracker fixed_version 5": (
        {"zlib": {"CVE-2099-2001": {"releases": {"bookworm": {"status": "open", "fixed_version": 5}}}}},
        "fixed_version is not a Debian version: 5",
    ),
    "tracker urgency 7": (
        {"zlib": {"CVE-2099-2002": {"releases": {"bookworm": {"status": "open", "urgency": 7}}}}},
        "urgency is not a string: 7",
    ),
    "OSV version ending in a newline": (
        _osv("OSV-NEWLINE", affected=_debian_range("1.2-1\n")),
        "not a Debian version: '1.2-1\\n'",
    ),
    "OSV severity 5": (
        _osv("OSV-SEVERITY", severity=5, affected=_debian_range("1.2-1")),
        "severity is not a list",
    ),
    "OSV ranges 5": (
        _osv("OSV-RANGES", affected=[{"package": {"ecosystem": "Debian:12", "name": "zlib"}, "ranges": 5}]),
        "ranges is not a list",
    ),
    "KEV dateAdded {}": (
        {"catalogVersion": "1", "vulnerabilities": [{"cveID": "CVE-2099-1001", "dateAdded": {}}]},
        "dateAdded is not a string: {}",
    ),
}


def test_records_a_scan_would_trip_on_are_skipped_and_counted(tmp_path: Path) -> None:
    home = _database(tmp_path)
    for index, (name, (document, reason)) in enumerate(HOSTILE_RECORDS.items()):
        path = tmp_path / f"hostile-{index}.json"
        path.write_text(json.dumps(document))
        result = _timed("db", "import", str(path), home=home)
        assert result.code == 0, (name, result.stderr)
        assert "1 skipped" in result.stderr and reason in result.stderr, (name, result.stderr)
    image = _image(tmp_path / "tree", _paragraph("openssl", "Version: 3.0.11-1") + b"\n"
                   + _paragraph("zlib1g", "Source: zlib", "Version: 1.2.13.dfsg-1"))  # fmt: skip
    scan = _timed("cves", image, "--format", "json", "--exit-code", home=home)
    assert scan.code == 1, scan.stderr
    assert {f["id"] for f in json.loads(scan.stdout)["findings"]} == {"CVE-2099-1001", "CVE-2099-1002"}


def test_malformed_records_already_in_a_database_never_stop_a_scan(tmp_path: Path) -> None:
    """A database an older Bastion filled (before import checked these fields): each bad record is
    left out with a warning naming it; the others still make findings."""
    home = _database(tmp_path)
    with sqlite3.connect(home / "vuln.db") as db:
        db.execute("UPDATE affected SET data = ? WHERE package = 'zlib'",
                   (json.dumps({"kind": "tracker", "status": "resolved", "fixed_version": 5}),))  # fmt: skip
        for ident, data in (
            (
                "OSV-NEWLINE",
                {"kind": "osv", "ranges": [[{"introduced": "0"}, {"fixed": "1.2-1\n"}]], "versions": []},
            ),
            ("OSV-RANGES", {"kind": "osv", "ranges": 5, "versions": []}),
        ):
            db.execute(
                "INSERT INTO advisories VALUES ('osv', ?, 'x', NULL, '', '', '[]', NULL, 'x')", (ident,)
            )
            db.execute(
                "INSERT INTO affected VALUES ('osv', ?, 'Debian:12', 'zlib', ?)", (ident, json.dumps(data))
            )
    image = _image(tmp_path / "tree", _paragraph("openssl", "Version: 3.0.11-1") + b"\n"
                   + _paragraph("zlib1g", "Source: zlib", "Version: 1.0-1"))  # fmt: skip
    scan = _timed("cves", image, "--exit-code", home=home)
    assert scan.code == 1 and "CVE-2099-1001" in scan.stdout, scan.stderr
    for ident, reason in (
        ("CVE-2099-1002", "fixed_version is not a string"),
        ("OSV-NEWLINE", "not a Debian version: '1.2-1\\n'"),
        ("OSV-RANGES", "ranges is not a list of event lists"),
    ):
        assert f"record {ident} left out: malformed in the database" in scan.stderr and reason in scan.stderr


def test_image_versions_that_do_not_parse_are_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    """``Version: garbage!``, ``Source: zlib (!!!)``, bytes that are not UTF-8, and
    an epoch of full-width digits, which python-debian reads as 1 and dpkg refuses."""
    home = _database(tmp_path)
    status = b"\n".join([
        _paragraph("openssl", "Version: garbage!"),
        _paragraph("zlib1g", "Source: zlib (!!!)", "Version: 1.0-1"),
        _paragraph("zlib-bin", "Source: zlib", "Version: 1.0-@@1").replace(b"@@", b"\xff\xfe"),
        _paragraph("libz-dev", "Source: zlib", "Version: \uff11:1.0-1"),
    ])  # fmt: skip
    scan = _timed("cves", _image(tmp_path / "tree", status), "--format", "json", "--exit-code", home=home)
    assert scan.code == 1, scan.stderr
    report = json.loads(scan.stdout)
    problems = {p["package"]["name"]: p for p in report["version_problems"]}
    assert set(problems) == {"openssl", "zlib1g", "zlib-bin", "libz-dev"}
    assert problems["openssl"]["problem"] == "not a Debian version: 'garbage!'"
    assert problems["zlib1g"]["problem"] == "not a Debian version: '!!!'"
    assert problems["libz-dev"]["problem"] == "not a Debian version: '\uff11:1.0-1'"
    # zlib's CVE is fixed in 1.3-1: only ordering could decide it, so it is counted, not guessed.
    assert all(problems[name]["undecided"] == 1 for name in ("zlib1g", "zlib-bin", "libz-dev"))
    # openssl's is open in bookworm, every version affected: still found.
    (finding,) = report["findings"]
    assert finding["id"] == "CVE-2099-1001" and finding["package"]["name"] == "openssl"
    assert "matched by a record that affects every version" in finding["note"]
    assert (
        "not a Debian version: 'garbage!': matched only by records that affect every version" in scan.stderr
    )


def test_a_package_without_a_version_is_matched_by_what_affects_every_version(tmp_path: Path) -> None:
    """It used to be dropped silently, and ``--exit-code`` passed over an open CVE."""
    home = _database(tmp_path)
    status = _paragraph("openssl") + b"\n" + _paragraph("zlib1g", "Source: zlib")
    scan = _timed("cves", _image(tmp_path / "tree", status), "--exit-code", home=home)
    assert scan.code == 1 and "CVE-2099-1001" in scan.stdout, scan.stderr
    assert (
        "openssl?arch=amd64&distro=debian-12: no version: matched only by records that affect every version"
        in scan.stderr
    )
    assert "upstream=zlib: no version" in scan.stderr and "left undecided: 1" in scan.stderr


def test_documents_nested_too_deeply_or_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    """Deep JSON and YAML to ``db import`` (named: refused; in a directory: skipped) and to
    ``cves sbom://``; an SBOM whose ``externalRefs`` is a string."""
    home = _database(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    deep_yaml = tmp_path / "deep.yaml"  # libyaml's composer recursed in C until the interpreter crashed
    deep_yaml.write_text("id: " + "[" * 100_000 + "]" * 100_000)
    bomb = tmp_path / "bomb.yaml"  # nine levels of nine aliases: 9**9 values from 1 kB
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)))  # fmt: skip
    for path, reason in ((deep, "the JSON nests deeper than 64 levels"),
                         (deep_yaml, "the YAML nests deeper than 64 levels"),
                         (bomb, "the document holds more than 1,000,000 values")):  # fmt: skip
        refused = _timed("db", "import", str(path), home=home)
        assert refused.code == 2 and f"{path}: {reason}" in refused.stderr, refused.stderr
    folder = tmp_path / "feeds"
    folder.mkdir()
    for path in (deep, deep_yaml, bomb):
        (folder / path.name).write_bytes(path.read_bytes())
    skipped = _timed("db", "import", str(folder), home=home)
    assert skipped.code == 0 and "3 skipped" in skipped.stderr, skipped.stderr

    sbom = tmp_path / "deep.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3", "packages": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused = _timed("cves", f"sbom://{sbom}", home=home)
    assert refused.code == 2 and "nests deeper than 64 levels" in refused.stderr, refused.stderr
    for document, field in (
        ({"spdxVersion": "SPDX-2.3", "packages": [{"SPDXID": "SPDXRef-a", "externalRefs": "pkg:deb/debian/zlib1g@1"}]},
         "packages[0].externalRefs is not a list of objects"),
        ({"spdxVersion": "SPDX-2.3", "packages": {"SPDXRef-a": {}}}, "packages is not a list of objects"),
        ({"bomFormat": "CycloneDX", "components": [{"purl": ["pkg:deb/debian/zlib1g@1"]}]},
         "components[0].purl is not a string"),
        ({"bomFormat": "CycloneDX", "metadata": {"component": {"properties": "x"}}},
         "metadata.component.properties is not a list of objects"),
    ):  # fmt: skip
        sbom.write_text(json.dumps(document))
        refused = _timed("cves", f"sbom://{sbom}", home=home)
        assert refused.code == 2 and f"{sbom}: {field}" in refused.stderr, refused.stderr


def test_concurrent_imports_into_a_fresh_database_take_turns(tmp_path: Path) -> None:
    """Real ``bastion db import`` processes started together on a fresh BASTION_HOME (they
    used to fail with "table ... already exists" and UNIQUE constraint errors)."""
    feed = _feed(tmp_path / "feed.json")
    home = tmp_path / "home"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: run_cli("db", "import", str(feed), home=home), range(8)))
    assert [r.code for r in results] == [0] * 8, [r.stderr for r in results if r.code]
    # Exactly one of them added the records; the others found them unchanged.
    assert sum("2 new" in r.stderr for r in results) == 1
    assert sum("2 unchanged" in r.stderr for r in results) == 7
    status = json.loads(_timed("db", "status", "--format", "json", home=home).stdout)
    assert [(s["name"], s["records"]) for s in status["sources"]] == [("debian-tracker", 2)]


@pytest.mark.parametrize("text", ["\uff11:1.0-1", "\u0661:1.0-1", "1.0-1\n", "1:1.0\n"])
def test_debian_versions_with_other_digits_or_a_final_newline_are_not_versions(text: str) -> None:
    """Python-debian reads these (its patterns use ``\\d`` and ``$``: an epoch of FULLWIDTH
    DIGIT ONE compares equal to ``1:1.0-1`` there, and the sort key once ordered it after); dpkg
    refuses them (Policy §5.6.12: the digits 0-9). The import check and the sort key agree."""
    from debian.debian_support import Version, version_compare

    Version(text)
    if text[0] != "1":
        assert version_compare(text, "1:1.0-1") == 0
    assert not is_debian_version(text)
    with pytest.raises(VersionError):
        parse("Debian:12", text)


@pytest.mark.parametrize(
    ("ecosystem", "text"),
    [("npm", "\uff11.0.0"), ("Go", "v1.\u0663.0"), ("Maven", "\u0661.\u0660"), ("Maven", "1." + "9" * 5000)],
)
def test_other_schemes_refuse_other_digits(ecosystem: str, text: str) -> None:
    with pytest.raises(VersionError):
        parse(ecosystem, text)
