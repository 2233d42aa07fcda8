"""``bastion sbom`` against Trivy, in both formats (SPDX JSON and CycloneDX JSON), on the python runtime
image and on the large image of ``benchmarks/large`` (317 packages), each exported as an OCI layout.

Interleaved pairs (Trivy, then Bastion, ``--runs`` times, default 5) so both see the same machine load;
medians with min-max of the wall time, median peak RSS, and ``/proc/loadavg`` before and after.
Trivy gets an empty ``--cache-dir`` each run (its layer cache would turn the next run into a lookup) and
no database (``--skip-db-update --offline-scan``), as in ``benchmarks/scanners.py``.

The images are built first (``bastion build --locked --skip-tests``, from the host's mirror, sharing the
tests' package cache) under a ``BASTION_HOME`` of the script's own, unless ``--home`` names one that
holds them. Usage: ``python3 benchmarks/sbom_vs_trivy.py [--runs 5] [--home DIR]``; prints a Markdown
table. Needs Trivy (``scripts/scanners``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _measure import measure

ROOT = Path(__file__).resolve().parent.parent
IMAGES = {
    "python runtime": (
        ROOT / "catalog" / "python" / "python.yaml",
        "bastion/python:3.11",
        ["--variant", "runtime"],
    ),
    "large (317 packages)": (ROOT / "benchmarks" / "large" / "large.yaml", "bastion/large:3.11", []),
}
FORMATS = {"spdx-json": "spdx-json", "cyclonedx-json": "cyclonedx"}  # Bastion's name: Trivy's


def trivy() -> Path:
    out = subprocess.run([str(ROOT / "scripts" / "scanners")], capture_output=True, text=True, check=True)
    tools = {line.split("\t")[0]: Path(line.split("\t")[1]) for line in out.stdout.splitlines() if line}
    return tools["trivy"]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def layout(home: Path, tmp: Path, env: dict[str, str], name: str) -> Path:
    definition, image, extra = IMAGES[name]
    bastion = [sys.executable, "-m", "bastion"]
    env = {**env, "BASTION_HOME": str(home)}
    have = subprocess.run([*bastion, "images"], env=env, capture_output=True, text=True, check=True).stdout
    if image not in have:
        build = [
            *bastion,
            "build",
            str(definition),
            "--locked",
            "--skip-tests",
            "--platform",
            "linux/amd64",
            *extra,
        ]
        subprocess.run(build, env=env, capture_output=True, check=True)
    path = tmp / image.replace("/", "_").replace(":", "_")
    export = [
        *bastion,
        "export",
        image,
        f"oci-dir://{path}:{image.split(':')[1]}",
        "--platform",
        "linux/amd64",
    ]
    subprocess.run(export, env=env, capture_output=True, check=True)
    return path


def summary(samples: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in samples]
    rss = statistics.median(rss for _, rss in samples)
    return f"{statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) | {rss:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--home", type=Path, help="a BASTION_HOME holding the images (else a new one)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    trivy_binary = trivy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = args.home or tmp / "home"
        if args.home is None:
            home.mkdir()
            (home / "cache").symlink_to(ROOT / ".cache" / "test-home" / "cache")
        for name in IMAGES:
            path = layout(home, tmp, env, name)
            tag = IMAGES[name][1].split(":")[1]
            for ours, theirs in FORMATS.items():
                before = loadavg()
                pairs: dict[str, list[tuple[float, float]]] = {"trivy": [], "bastion sbom": []}
                for run in range(args.runs):
                    cache = tmp / f"trivy-cache-{run}"
                    pairs["trivy"].append(measure(
                        [str(trivy_binary), "image", "--input", str(path), "--format", theirs, "--cache-dir",
                         str(cache), "--skip-db-update", "--offline-scan", "--quiet"], env))  # fmt: skip
                    bastion_env = {**env, "BASTION_HOME": str(tmp / "sbom-home")}
                    pairs["bastion sbom"].append(measure(
                        [sys.executable, "-m", "bastion", "sbom", f"oci-dir://{path}:{tag}", "--format", ours],
                        bastion_env))  # fmt: skip
                ratio = statistics.median(
                    b[0] / t[0] for b, t in zip(pairs["bastion sbom"], pairs["trivy"], strict=True)
                )
                for tool, samples in pairs.items():
                    rows.append(f"| {name} | {ours} | {tool} | {summary(samples)} | {before} → {loadavg()} |")
                rows.append(
                    f"| {name} | {ours} | **bastion ÷ trivy (median of pairs)** | **{ratio:.2f}** | | |"
                )
    print(f"{args.runs} interleaved pairs per row; {os.cpu_count()} CPUs\n")
    print("| image | format | tool | wall s, median (min-max) | peak RSS MiB | load before → after |")
    print("|---|---|---|---|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
