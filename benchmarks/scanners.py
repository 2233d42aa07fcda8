"""SBOM generation time and peak memory: Syft and Trivy (and ``bastion sbom`` once it exists) on the
python runtime image (OCI layout, amd64) and on the larger sample root filesystem of
``tests/scanners/rootfs.py`` (as a directory and as an OCI layout).

Each command runs ``--runs`` times (default 5) and the median wall time and median peak RSS are
reported, and each tool's start-up alone (``version``). Trivy gets an empty ``--cache-dir`` on every run (its layer cache would otherwise turn the
second run into a lookup); Syft keeps no cache. The update check of Syft is switched off.
Usage: ``python3 benchmarks/scanners.py [--runs 5]``; needs the scanners (``scripts/scanners``, from
PyPI and npm the first time) and, the first time, the network for the sample. Prints a Markdown table.
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
DEFINITION = ROOT / "catalog" / "python" / "python.yaml"
IMAGE = "bastion/python:3.11"


def scanners() -> tuple[Path, Path]:
    out = subprocess.run([str(ROOT / "scripts" / "scanners")], capture_output=True, text=True, check=True)
    tools = {line.split("\t")[0]: Path(line.split("\t")[1]) for line in out.stdout.splitlines() if line}
    print(out.stdout.strip(), file=sys.stderr)
    return tools["syft"], tools["trivy"]


def bastion_has_sbom(env: dict[str, str]) -> bool:
    probe = subprocess.run(
        [sys.executable, "-m", "bastion", "sbom", "--help"], capture_output=True, env=env, check=False
    )
    return probe.returncode == 0


def python_runtime_layout(tmp: Path, env: dict[str, str]) -> Path:
    """The python runtime image built from the lock file (sharing the tests' package cache), exported."""
    home = tmp / "home"
    home.mkdir()
    cache = ROOT / ".cache" / "test-home" / "cache"
    if cache.is_dir():
        (home / "cache").symlink_to(cache)
    env = {**env, "BASTION_HOME": str(home)}
    bastion = [sys.executable, "-m", "bastion"]
    build = [*bastion, "build", str(DEFINITION), "--locked", "--variant", "runtime"]
    subprocess.run(
        [*build, "--platform", "linux/amd64", "--skip-tests"], env=env, capture_output=True, check=True
    )
    layout = tmp / "python-runtime"
    export = [*bastion, "export", IMAGE, f"oci-dir://{layout}:3.11", "--platform", "linux/amd64"]
    subprocess.run(export, env=env, capture_output=True, check=True)
    return layout


def tool_commands(
    syft: Path, trivy: Path, kind: str, path: Path, tag: str, *, with_sbom: bool
) -> dict[str, list[str]]:
    """The command of each tool for one target: ``kind`` is ``oci`` (a layout) or ``dir``."""
    oci = kind == "oci"
    trivy_target = ["image", "--input", str(path)] if oci else ["rootfs", str(path)]
    commands = {
        "syft": [str(syft), "scan", f"{'oci-dir' if oci else 'dir'}:{path}", "-q", "-o", "syft-json"],
        "trivy": [str(trivy), *trivy_target, "--format", "cyclonedx", "--skip-db-update", "--offline-scan"],
    }
    if with_sbom:
        target = f"oci-dir://{path}:{tag}" if oci else f"fs://{path}"
        commands["bastion sbom"] = [sys.executable, "-m", "bastion", "sbom", target, "--format", "spdx-json"]
    return commands


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
    syft, trivy = scanners()
    sys.path.insert(0, str(ROOT))  # the sample is built by the tests' builder
    from tests.scanners.rootfs import TAG, sample_rootfs

    sample = sample_rootfs()
    with_sbom = bastion_has_sbom(env)
    if not with_sbom:
        print("bastion sbom: not available yet, skipped", file=sys.stderr)
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        python_layout = python_runtime_layout(tmp, env)
        # This Trivy is UPX-packed: unpacking it costs seconds on every start. Measured alone, so that it
        # can be told apart from the scan itself.
        for tool, cmd in {"syft": [str(syft), "version"], "trivy": [str(trivy), "--version"]}.items():
            samples = [measure(cmd, env) for _ in range(args.runs)]
            rows.append(("(start-up only)", tool, *_medians(samples)))
        targets = {
            "python runtime (OCI layout)": ("oci", python_layout, "3.11"),
            "sample (OCI layout)": ("oci", sample.layout, TAG),
            "sample (directory)": ("dir", sample.root, ""),
        }
        for label, (kind, path, tag) in targets.items():
            commands = tool_commands(syft, trivy, kind, path, tag, with_sbom=with_sbom)
            for tool, cmd in commands.items():
                samples = []
                for run in range(args.runs):
                    extra = []
                    if tool == "trivy":
                        extra = ["--cache-dir", str(tmp / f"trivy-cache-{label}-{run}".replace(" ", "_"))]
                    samples.append(measure([*cmd, *extra], env))
                rows.append((label, tool, *_medians(samples)))
                print(f"{label}: {tool} {rows[-1][2]:.2f} s {rows[-1][3]:.0f} MiB", file=sys.stderr)
    print(f"| target | tool | wall (median of {args.runs}) | peak RSS (median) |")
    print("|---|---|---|---|")
    for label, tool, wall, rss in rows:
        print(f"| {label} | {tool} | {wall:.2f} s | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
