"""Resolve + fetch of the python3.11 set (catalog/python, runtime, amd64), cold and warm cache,
against ``apt-get download`` of the same package list. Wall time and peak memory (max RSS of the
child), median of N runs. Usage: ``python3 benchmarks/supply.py [--runs 5]``; prints a Markdown table.

Each Bastion run is the real command line in a fresh process. "cold" starts from an empty
BASTION_HOME; "warm" reuses one whose cache already holds the indices and packages (InRelease is
still fetched and verified: only ``--locked`` skips the network entirely, measured as "locked").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _measure import measure as _measure

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "catalog" / "python" / "python.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    bastion = [sys.executable, "-m", "bastion"]
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        warm_home = tmpdir / "warm"
        env_warm = {**base_env, "BASTION_HOME": str(warm_home)}
        _measure([*bastion, "lock", str(DEFINITION)], env_warm)
        names = json.loads((DEFINITION.with_name("python.lock.json")).read_text())["variants"]["runtime"][
            "linux/amd64"
        ]["packages"]
        packages = [f"{p['name']}={p['version']}" for p in names]
        fetch = [*bastion, "fetch", str(DEFINITION), "--variant", "runtime", "--platform", "linux/amd64"]
        for run in range(args.runs):
            cold_home = tmpdir / f"cold{run}"
            env_cold = {**base_env, "BASTION_HOME": str(cold_home)}
            results.setdefault("bastion fetch, cold cache", []).append(_measure(fetch, env_cold))
            shutil.rmtree(cold_home)
            results.setdefault("bastion fetch, warm cache", []).append(_measure(fetch, env_warm))
            results.setdefault("bastion fetch --locked, warm cache (no network)", []).append(
                _measure([*fetch, "--locked"], env_warm)
            )
            results.setdefault("bastion packages (resolve only), warm cache", []).append(
                _measure(
                    [
                        *bastion,
                        "packages",
                        str(DEFINITION),
                        "--variant",
                        "runtime",
                        "--platform",
                        "linux/amd64",
                    ],
                    env_warm,
                )
            )
            dl = tmpdir / f"apt{run}"
            dl.mkdir()
            results.setdefault("apt-get download (same list, apt's lists already updated)", []).append(
                _measure(["apt-get", "download", "-q", *packages], base_env, cwd=dl)
            )
            shutil.rmtree(dl)
    print(
        f"| what (python runtime set, {len(packages)} packages, amd64) | wall s (median of {args.runs}) | peak RSS MiB |"
    )
    print("|---|---:|---:|")
    for what, runs in results.items():
        print(
            f"| {what} | {statistics.median(w for w, _ in runs):.2f} | {statistics.median(r for _, r in runs):.0f} |"
        )


if __name__ == "__main__":
    main()
