"""Vulnerability database: import speed (records/s) and scan latency of a 500-package SBOM against a
database of at least 200,000 records.

Records are generated in the shapes of the real feeds, with real Debian names and versions: the
binary and source packages of bookworm as this host's apt lists hold them (``apt-cache dumpavail``;
run ``apt-get update`` first). Three quarters are OSV ``Debian:12`` records (the shape of OSV's
``all.zip``, one JSON file per record, ranges ``introduced 0`` / ``fixed`` at real versions), one
quarter is a Debian security tracker feed (the shape of ``../shared/data/debian-tracker``), each state
represented. The SBOM is 500 real bookworm binary packages.

The scan is timed in fresh processes (one ``match_sbom`` each, then a second in the same process),
since ``bastion cves`` runs one scan per process.

    python3 benchmarks/vuln.py [--records 200000] [--packages 500] [--runs 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bastion.sbom import Package, PackageType, Sbom
from bastion.vuln import import_paths, match_sbom, open_database


def bookworm_packages() -> list[tuple[str, str, str, str]]:
    """(binary, version, source, source version) of every package apt knows."""
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    found = []
    for paragraph in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in paragraph.splitlines()
            if ": " in line and not line.startswith(" ")
        )
        if "Package" not in fields or "Version" not in fields:
            continue
        source, _, source_version = fields.get("Source", fields["Package"]).partition(" ")
        found.append(
            (fields["Package"], fields["Version"], source, source_version.strip("()") or fields["Version"])
        )
    if not found:
        sys.exit("apt-cache dumpavail printed nothing: run apt-get update first")
    return found


_VECTORS = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H",
]


def _bumped(version: str, rng: random.Random) -> str:
    return version + rng.choice(["+deb12u1", "+deb12u2", "+b1", "-0.1"])


def generate(
    packages: list[tuple[str, str, str, str]], count: int, work: Path, rng: random.Random
) -> list[Path]:
    sources = sorted({(source, version) for _b, _v, source, version in packages})
    osv_count = count * 3 // 4
    archive = work / "Debian-12-all.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for index in range(osv_count):
            source, version = sources[index % len(sources)]
            cve = f"CVE-{2000 + index % 25}-{100000 + index}"
            fixed = _bumped(version, rng) if index % 3 else "0.1-1"  # two thirds affect the shipped version
            record = {
                "id": f"DEBIAN-{cve}", "modified": "2024-10-01T00:00:00Z", "published": "2024-01-01T00:00:00Z",
                "aliases": [cve], "summary": f"{source}: generated record {index}",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": source, "purl": f"pkg:deb/debian/{source}?arch=source"},
                              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                              "ecosystem_specific": {"urgency": rng.choice(["low", "medium", "high", "unimportant"])}}],
            }  # fmt: skip
            if index % 4 == 0:  # a quarter carry a CVSS vector, as GHSA and many other records do
                record["severity"] = [{"type": "CVSS_V3", "score": rng.choice(_VECTORS)}]
            out.writestr(f"DEBIAN-{cve}.json", json.dumps(record))
    states = [
        {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"},
        {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": ""},
        {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "postponed"},
        {"status": "open", "urgency": "unimportant"},
        {"status": "open", "urgency": "not yet assigned"},
        {"status": "undetermined", "urgency": "not yet assigned"},
    ]
    tracker: dict[str, dict[str, object]] = {}
    for index in range(count - osv_count):
        source, version = sources[(index * 7) % len(sources)]
        release = dict(rng.choice(states)) if index % 2 else {"status": "resolved", "urgency": "medium",
                                                             "fixed_version": _bumped(version, rng)}  # fmt: skip
        release["repositories"] = {"bookworm": version}
        tracker.setdefault(source, {})[f"CVE-2030-{200000 + index}"] = {
            "description": f"generated {index}", "scope": "remote", "releases": {"bookworm": release}}  # fmt: skip
    feed = work / "tracker.json"
    feed.write_text(json.dumps(tracker))
    return [archive, feed]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--packages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scan", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scan:
        scan_child(*args.scan)
        return
    rng = random.Random(6)
    packages = bookworm_packages()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = generate(packages, args.records, work, rng)
        database = open_database(work / "home")
        started = time.perf_counter()
        report = import_paths(database, paths)
        seconds = time.perf_counter() - started
        print(f"import: {report.imported} records in {seconds:.2f} s = {report.imported / seconds:,.0f} records/s "
              f"({report.skipped} skipped)")  # fmt: skip
        started = time.perf_counter()
        again = import_paths(database, paths)
        seconds = time.perf_counter() - started
        print(f"re-import (all unchanged): {again.unchanged} records in {seconds:.2f} s = {again.unchanged / seconds:,.0f} records/s")  # fmt: skip
        chosen = rng.sample(packages, args.packages)
        database.close()
        chosen_file = work / "chosen.json"
        chosen_file.write_text(json.dumps(chosen))
        # Each scan in a fresh process, as `bastion cves` runs one: no version keys or statements
        # cached by an earlier scan. The second scan in the same process is shown beside it.
        child = [sys.executable, __file__, "--scan", str(work / "home"), str(chosen_file)]
        runs = [json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
                for _ in range(args.runs)]  # fmt: skip
        first = [r["first"] for r in runs]
        again = [r["again"] for r in runs]
        print(f"scan of {args.packages} packages: {runs[0]['findings']} findings ({runs[0]['rated']} with CVSS), "
              f"{runs[0]['fixed']} fixed; first scan in a process: median {statistics.median(first) * 1000:.0f} ms, "
              f"max {max(first) * 1000:.0f} ms over {args.runs} processes; a second scan in the same process: "
              f"median {statistics.median(again) * 1000:.0f} ms")  # fmt: skip


def scan_child(home: Path, chosen_file: Path) -> None:
    gc.disable()  # as the `bastion` command does for the whole of every command (bastion/cli/_main.py)
    chosen = json.loads(chosen_file.read_text())
    sbom = Sbom("bench", None, "linux/amd64", None, distro="debian-12", packages=[
        Package(PackageType.DEB, name, version, f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
                source_name=source, source_version=source_version)
        for name, version, source, source_version in chosen
    ])  # fmt: skip
    database = open_database(home)
    started = time.perf_counter()
    result = match_sbom(sbom, database)
    first = time.perf_counter() - started
    started = time.perf_counter()
    match_sbom(sbom, database)
    again = time.perf_counter() - started
    rated = sum(1 for f in result.findings if f.cvss)
    print(json.dumps({"first": first, "again": again, "findings": len(result.findings), "fixed": len(result.fixed), "rated": rated}))  # fmt: skip


if __name__ == "__main__":
    main()
