"""Wall time and peak RSS of one command, each in its own wrapper process so that ru_maxrss of
RUSAGE_CHILDREN belongs to that command alone; or the instructions it executes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def measure(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    # Run through a tiny wrapper so ru_maxrss belongs to this one command.
    wrapper = [sys.executable, "-c", WRAPPER, json.dumps(cmd), str(cwd or "")]
    out = subprocess.run(wrapper, env=env, capture_output=True, text=True, check=True).stdout
    wall, rss = out.split()
    return float(wall), float(rss)


WRAPPER = """
import json, os, resource, subprocess, sys, time
cmd = json.loads(sys.argv[1]); cwd = sys.argv[2] or None
t = time.perf_counter()
p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
w = time.perf_counter() - t
if p.returncode: sys.exit(p.stderr.decode()[-2000:])
print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def instructions(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    """Instructions the command executes (``valgrind --tool=cachegrind --cache-sim=no``): unlike wall
    time, the same whatever else the machine runs. Child processes are not followed."""
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *cmd],
        env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if out.returncode or found is None:
        sys.exit(f"{cmd}: exit {out.returncode}\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))
