"""Start-up of ``bastion cves``: the whole command against ``bastion --version``, with the scan itself
(opening the image, cataloguing it, matching) timed apart, so that what the command costs beyond the
scan can be compared with the bare start-up. Issue 19's target: under 2x ``bastion --version``.

"The scan itself" is the scan functions' work only: the timed child first imports every module the
``cves`` command loads (listed by running the command once in-process), timed apart as "imports",
then times the library calls the command makes for the scan. Imports the scan would otherwise do on
first use (the image opener, the catalogers) are therefore start-up cost, not scan time.

The database is generated as ``benchmarks/vuln.py`` does (real bookworm names and versions; run
``apt-get update`` first) and imported once; the image is the python image of the test home's store
(``tests/conftest.py``) unless ``--image`` names another. Runs are interleaved (version, cves, scan),
each a fresh process; medians with min-max, and the machine's load before and after.

``--callgrind`` counts instructions instead (valgrind's callgrind, one run each; slow, but not moved
by the machine's load): ``--version``, ``cves``, and the child with and without the scan calls (the
scan's count is their difference). ``-X importtime`` sums are printed with either.

    python3 benchmarks/startup.py [--image IMAGE] [--records 20000] [--runs 7] [--callgrind]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
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

# The cves command run in-process, writing the names of the modules it loaded (in import order).
MODULES_CHILD = """
import atexit, json, sys
def _write():
    with open(sys.argv[2], "w") as out:
        json.dump([name for name, module in sys.modules.items() if module is not None], out)
atexit.register(_write)
from bastion.cli import main
main(["cves", sys.argv[1], "--format", "json"])
"""

# A fresh interpreter that imports what the cves command loads (timed as "imports"), then, unless
# told "imports", times only the library calls the command makes for the scan (bastion/cli/_vuln.py:
# require_database, load_sbom, scan_sbom).
SCAN_CHILD = """
import gc, importlib, json, sys, time
gc.disable()  # as the bastion command does (bastion/cli/_main.py)
started = time.perf_counter()
import bastion.cli
missing = []
for name in json.load(open(sys.argv[2])):
    if name not in sys.modules and name != "__main__":
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
from bastion.config import Settings
from bastion.vuln import load_config, load_sbom, require_database, scan_sbom
imported = time.perf_counter()
findings = scan = None
if sys.argv[3] == "scan":
    settings = Settings.from_env()
    database = require_database(settings)
    result = scan_sbom(load_sbom(sys.argv[1], settings), database,
                       max_age_hours=load_config(settings.home).max_age_hours)
    scan, findings = time.perf_counter() - imported, len(result.findings)
print(json.dumps({"imports": imported - started, "scan": scan, "findings": findings, "missing": missing,
                  "loaded_after": sorted(set(sys.modules) - set(json.load(open(sys.argv[2]))))}))
"""


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def _importtime(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """The sum of ``-X importtime``'s self times (ms) and the number of modules imported."""
    err = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, capture_output=True,
                         text=True, check=True).stderr  # fmt: skip
    selfs = [int(m.group(1)) for m in re.finditer(r"^import time:\s+(\d+) \|", err, re.MULTILINE)]
    return sum(selfs) / 1000, len(selfs)


def _instructions(args: list[str], env: dict[str, str]) -> int:
    """Instructions executed (callgrind's "Collected" total) by the interpreter running ``args``."""
    err = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          *args], env=env, capture_output=True, text=True, check=True).stderr  # fmt: skip
    found = re.search(r"Collected : (\d+)", err)
    if found is None:
        sys.exit(f"no instruction total from valgrind: {err[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", help="the image to scan (default: the test home's python image)")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--callgrind", action="store_true", help="count instructions (valgrind) instead")
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
        modules = work / "modules.json"
        subprocess.run([sys.executable, "-c", MODULES_CHILD, image, str(modules)], env=env, check=True,
                       capture_output=True)  # fmt: skip
        version_args = ["-m", "bastion", "--version"]
        cves_args = ["-m", "bastion", "cves", image, "--format", "json"]
        print(f"image {image}, database of {args.records:,} generated records, "
              f"{len(json.loads(modules.read_text()))} modules loaded by cves")  # fmt: skip
        for name, command in (("--version", version_args), ("cves IMAGE", cves_args)):
            total, count = _importtime(command, env)
            print(f"-X importtime, bastion {name}: {count} modules, self times summing to {total:.0f} ms")
        if args.callgrind:
            _callgrind(version_args, cves_args, image, modules, env)
        else:
            _timed(version_args, cves_args, image, modules, env, args.runs)
    print(f"load after: {_load()}")


def _child(image: str, modules: Path, mode: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", SCAN_CHILD, image, str(modules), mode], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    data: dict[str, object] = json.loads(out)
    if data["missing"]:
        print(f"  (modules the child could not import: {data['missing']})")
    if mode == "scan" and data["loaded_after"]:
        print(f"  (modules the scan still imported itself: {data['loaded_after']})")
    return data


def _timed(version_args: list[str], cves_args: list[str], image: str, modules: Path, env: dict[str, str],
           runs: int) -> None:  # fmt: skip
    version, cves, imports, scans = [], [], [], []
    findings = 0
    for _ in range(runs):
        version.append(measure([sys.executable, *version_args], env)[0])
        cves.append(measure([sys.executable, *cves_args], env)[0])
        data = _child(image, modules, "scan", env)
        imports.append(float(data["imports"]))  # type: ignore[arg-type]
        scans.append(float(data["scan"]))  # type: ignore[arg-type]
        findings = int(data["findings"])  # type: ignore[call-overload]
    beyond = [c - s for c, s in zip(cves, scans, strict=True)]
    print(f"{findings} findings; wall times, median (min-max) of {runs}:")
    print(f"bastion --version:        {_summary(version)}")
    print(f"bastion cves IMAGE:       {_summary(cves)}")
    print(f"  its imports (in-process): {_summary(imports)}")
    print(f"  the scan itself:        {_summary(scans)}")
    print(f"  cves beyond the scan:   {_summary(beyond)}")
    ratio = statistics.median(beyond) / statistics.median(version)
    print(f"cves beyond the scan / --version: {ratio:.2f} (target: under 2)")


def _callgrind(version_args: list[str], cves_args: list[str], image: str, modules: Path,
               env: dict[str, str]) -> None:  # fmt: skip
    version = _instructions(version_args, env)
    cves = _instructions(cves_args, env)
    child = [image, str(modules)]
    imports = _instructions(["-c", SCAN_CHILD, *child, "imports"], env)
    with_scan = _instructions(["-c", SCAN_CHILD, *child, "scan"], env)
    scan = with_scan - imports
    print("instructions (callgrind Ir), one run each:")
    print(f"bastion --version:        {version / 1e6:,.0f} M")
    print(f"bastion cves IMAGE:       {cves / 1e6:,.0f} M")
    print(f"  child, imports only:    {imports / 1e6:,.0f} M")
    print(f"  the scan itself:        {scan / 1e6:,.0f} M (child with the scan minus without)")
    print(f"  cves beyond the scan:   {(cves - scan) / 1e6:,.0f} M")
    print(f"cves beyond the scan / --version: {(cves - scan) / version:.2f} (target: under 2)")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s")
