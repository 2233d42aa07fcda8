"""The attestations' share of a signed build of the large image (``benchmarks/large``, 317 packages):
``bastion build --locked --skip-tests`` (signed: SPDX, CycloneDX, SLSA provenance, and what the data
gives) against the same build with ``--no-attest``, interleaved pairs, each build in an empty store (a
``BASTION_HOME`` of its own sharing the tests' package cache and one signing key, so neither pays for
downloads or key generation). Share = (signed - unsigned) / signed, per pair; medians with min-max and
``/proc/loadavg`` before and after.

Usage, as root (the host's mirror as the lock file names it): ``python3 benchmarks/attest_share.py
[--runs 5] [--definition benchmarks/large/large.yaml]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _measure import measure

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fresh_home(tmp: Path, name: str, keys: Path | None) -> Path:
    home = tmp / name
    home.mkdir()
    (home / "cache").symlink_to(ROOT / ".cache" / "test-home" / "cache")
    if keys is not None:
        shutil.copytree(keys, home / "keys")
    return home


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--definition", type=Path, default=ROOT / "benchmarks" / "large" / "large.yaml")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    build = [sys.executable, "-m", "bastion", "build", str(args.definition), "--locked", "--skip-tests"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        warm = fresh_home(tmp, "warm", None)  # fills the unpacked cache, makes the key
        subprocess.run(build, env={**env, "BASTION_HOME": str(warm)}, capture_output=True, check=True)
        before = loadavg()
        signed: list[float] = []
        unsigned: list[float] = []
        for run in range(args.runs):
            home = fresh_home(tmp, f"signed-{run}", warm / "keys")
            signed.append(measure(build, {**env, "BASTION_HOME": str(home)})[0])
            home = fresh_home(tmp, f"unsigned-{run}", warm / "keys")
            unsigned.append(measure([*build, "--no-attest"], {**env, "BASTION_HOME": str(home)})[0])
    shares = [(s - u) / s * 100 for s, u in zip(signed, unsigned, strict=True)]
    print(f"{args.definition.name}, {args.runs} interleaved pairs, load {before} -> {loadavg()}\n")
    print("| build | wall s, median (min-max) |")
    print("|---|---|")
    print(f"| signed (`--skip-tests`) | {spread(signed)} |")
    print(f"| `--no-attest --skip-tests` | {spread(unsigned)} |")
    print(f"| **attestations' share of the signed build, %** | **{spread(shares, 0)}** |")


if __name__ == "__main__":
    main()
