"""What each refused hostile input costs: runs the tests that attack Bastion through the ``bastion``
command (issue 15's red-team findings) with ``BASTION_TEST_RECORD`` set, and prints, for each test,
every exit code seen and the worst wall time and peak resident memory of one ``bastion`` process.

    python3 benchmarks/hostile.py > /tmp/hostile.md

The figures are what the commands cost on this machine, recorded in ``docs/hostile-inputs.md``; the
tests themselves assert only the exit codes and messages (timing is not asserted in tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "tests/vuln/test_hostile.py",
    "tests/registry/test_hostile_registry.py",
    "tests/image/test_hostile_sources.py",
    "tests/image/test_sigterm.py",
    "tests/image/test_open.py::test_a_tree_that_changes_during_the_scan_is_scanned_or_refused_never_a_crash",
    "tests/sbom/test_hostile_images.py",
    "tests/policy",
    "tests/catalog/test_definition_hostile.py",
    "tests/vex/test_vex_hostile.py",
    "tests/test_output.py",
    "tests/pipeline/test_sandbox_escape.py",
    "tests/pipeline/test_build_attest_reuse.py",
]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "runs.jsonl"
        env = {**os.environ, "BASTION_TEST_RECORD": str(record)}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FILES],
                              cwd=ROOT, env=env, check=False, stdout=sys.stderr)  # fmt: skip
        runs = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    per_test: dict[str, list[dict[str, object]]] = defaultdict(list)
    for run in runs:
        per_test[str(run["test"])].append(run)
    print("| test | `bastion` runs | exit codes | slowest run (s) | largest peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for test, entries in sorted(per_test.items()):
        codes = sorted({int(str(e["code"])) for e in entries})
        slowest = max(float(str(e["seconds"])) for e in entries)
        largest = max(int(str(e["max_rss_kib"])) for e in entries) / 1024
        print(f"| `{test}` | {len(entries)} | {', '.join(map(str, codes))} | {slowest:.2f} | {largest:.0f} |")
    worst_code = max((int(str(r["code"])) for r in runs), default=0)
    print(
        f"\n{len(runs)} runs; pytest exit {done.returncode}; highest exit code {worst_code}", file=sys.stderr
    )
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
