"""Start-up of ``bastion cves``: the whole command against ``bastion --version``, with the scan itself
(opening the image, cataloguing it, matching) timed apart, so that what the command costs beyond the
scan can be compared with the bare start-up. Issue 19's target: under 2x ``bastion --version``.

The database is generated as ``benchmarks/vuln.py`` does (real bookworm names and versions; run
``apt-get update`` first) and imported once; the image is the python image of the test home's store
(``tests/conftest.py``) unless ``--image`` names another. Runs are interleaved (version, cves, scan),
each a fresh process; medians with min-max, and the machine's load before and after.

    python3 benchmarks/startup.py [--image IMAGE] [--records 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import measure

from vuln import bookworm_packages, generate

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "oci-dir://{home}/store:bastion/python:3.11"

# A fresh interpreter with the cves command's modules imported, timing only the library calls the
# command makes for the scan (bastion/cli/_vuln.py: require_database, load_sbom, scan_sbom).
SCAN_CHILD = """
import gc, json, sys, time
gc.disable()  # as the bastion command does (bastion/cli/_main.py)
from bastion.config import Settings
from bastion.vuln import load_config, load_sbom, require_database, scan_sbom
settings = Settings.from_env()
started = time.perf_counter()
database = require_database(settings)
result = scan_sbom(load_sbom(sys.argv[1], settings), database,
                   max_age_hours=load_config(settings.home).max_age_hours)
print(json.dumps({"scan": time.perf_counter() - started, "findings": len(result.findings)}))
"""


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", help="the image to scan (default: the test home's python image)")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    test_home = Path(os.environ.get("BASTION_TEST_HOME", REPO / ".cache" / "test-home"))
    image = args.image or DEFAULT_IMAGE.format(home=test_home)
    print(f"load before: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "home"
        paths = generate(bookworm_packages(), args.records, work, random.Random(19))
        env = {**os.environ, "BASTION_HOME": str(home)}
        subprocess.run([sys.executable, "-m", "bastion", "db", "import", *map(str, paths)], env=env,
                       check=True, capture_output=True)  # fmt: skip
        version, cves, scans = [], [], []
        findings = 0
        for _ in range(args.runs):
            version.append(measure([sys.executable, "-m", "bastion", "--version"], env)[0])
            cves.append(measure([sys.executable, "-m", "bastion", "cves", image, "--format", "json"], env)[0])
            child = subprocess.run([sys.executable, "-c", SCAN_CHILD, image], env=env, capture_output=True,
                                   text=True, check=True)  # fmt: skip
            data = json.loads(child.stdout)
            scans.append(data["scan"])
            findings = data["findings"]
    beyond = [c - s for c, s in zip(cves, scans, strict=True)]
    print(f"image {image}: {findings} findings, database of {args.records:,} generated records")
    print(f"bastion --version:        {_summary(version)}")
    print(f"bastion cves IMAGE:       {_summary(cves)}")
    print(f"  the scan itself:        {_summary(scans)}")
    print(f"  cves beyond the scan:   {_summary(beyond)}")
    ratio = statistics.median(beyond) / statistics.median(version)
    print(f"cves beyond the scan / --version: {ratio:.2f} (target: under 2)")
    print(f"load after: {_load()}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s")
