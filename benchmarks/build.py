"""Build of the python runtime image (amd64) against mmdebstrap, same machine, same run.

Bastion: ``bastion build catalog/python/python.yaml --locked --variant runtime --platform linux/amd64``
into an empty store from a warm cache (with and without the image tests; with and without the signed
attestations, which mmdebstrap has no counterpart for), from a cache holding only the verified .debs
(packages unpacked and layer parts compressed in the measured build), from a cold cache, and a
no-op rebuild into the same store. mmdebstrap: ``--variant=extract`` of the same package list
with an ``--extract-hook`` that writes the dpkg status (the closest equivalent), to a tar.
Usage: ``python3 benchmarks/build.py [--runs 5]``; prints a Markdown table and the image size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _measure import measure

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "catalog" / "python" / "python.yaml"
STATUS_HOOK = (
    'for f in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb -f "$f"; echo "Status: install ok installed"; echo; done'
    ' > "$1"/var/lib/dpkg/status'
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    bastion = [sys.executable, "-m", "bastion"]
    build = [
        *bastion,
        "build",
        str(DEFINITION),
        "--locked",
        "--variant",
        "runtime",
        "--platform",
        "linux/amd64",
    ]
    lock = json.loads(DEFINITION.with_name("python.lock.json").read_text())
    packages = [p["name"] for p in lock["variants"]["runtime"]["linux/amd64"]["packages"]]
    mirrors = []
    for suite in lock["suites"]:
        mirrors.append(f"deb {suite['repository']} {suite['suite']} main")
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        warm = tmpdir / "warm"
        measure([*build, "--skip-tests"], {**env, "BASTION_HOME": str(warm)})  # fill the cache
        for run in range(args.runs):
            # Warm: the .debs, indices, unpacked packages and compressed layer parts of an earlier build.
            home = tmpdir / f"h{run}"
            home.mkdir()
            (home / "cache").symlink_to(warm / "cache")
            henv = {**env, "BASTION_HOME": str(home)}
            results.setdefault(
                "bastion build --no-attest, warm cache, empty store, no image tests", []
            ).append(measure([*build, "--skip-tests", "--no-attest"], henv))
            shutil.rmtree(home / "store")
            results.setdefault("bastion build, warm cache, empty store, no image tests", []).append(
                measure([*build, "--skip-tests"], henv)
            )
            results.setdefault("bastion build, same store again (no-op rebuild), no tests", []).append(
                measure([*build, "--skip-tests"], henv)
            )
            results.setdefault("bastion build, warm cache, with the 7 image tests in bwrap", []).append(
                measure(build, henv)
            )
            shutil.rmtree(home)
            # Packages only: the verified .debs and indices are cached, nothing made from them yet.
            debs = tmpdir / f"d{run}"
            (debs / "cache").mkdir(parents=True)
            for kept in ("sha256", "indices"):
                (debs / "cache" / kept).symlink_to(warm / "cache" / kept)
            results.setdefault(
                "bastion build --no-attest, cached .debs only (unpack and compress now), no tests", []
            ).append(measure([*build, "--skip-tests", "--no-attest"], {**env, "BASTION_HOME": str(debs)}))
            shutil.rmtree(debs)
            cold = tmpdir / f"cold{run}"
            results.setdefault("bastion build, cold cache (download + verify), no tests", []).append(
                measure([*build, "--skip-tests"], {**env, "BASTION_HOME": str(cold)})
            )
            shutil.rmtree(cold)
            out = tmpdir / f"mm{run}.tar"
            results.setdefault("mmdebstrap --variant=extract + status hook (same packages)", []).append(
                measure(
                    [
                        "mmdebstrap",
                        "--quiet",
                        "--variant=extract",
                        f"--include={','.join(packages)}",
                        "--architectures=amd64",
                        f"--extract-hook={STATUS_HOOK}",
                        "bookworm",
                        str(out),
                        *mirrors,
                    ],
                    env,
                )
            )
            out.unlink()
        # Image size: uncompressed layers vs the same packages unpacked with dpkg-deb.
        inspect = subprocess.run(
            [*bastion, "inspect", "bastion/python:3.11"], env={**env, "BASTION_HOME": str(warm)},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        (platform,) = json.loads(inspect.stdout)["platforms"]
        compressed = sum(layer["size"] for layer in platform["manifest"]["layers"])
        store = warm / "store" / "blobs" / "sha256"
        uncompressed = 0
        for layer in platform["manifest"]["layers"]:
            blob = store / layer["digest"].split(":", 1)[1]
            uncompressed += int(
                subprocess.run(
                    f"gzip -dc {blob} | wc -c", shell=True, capture_output=True, text=True, check=True
                ).stdout
            )
        unpacked = tmpdir / "unpacked"
        unpacked.mkdir()
        for p in lock["variants"]["runtime"]["linux/amd64"]["packages"]:
            deb = warm / "cache" / "sha256" / p["sha256"][:2] / p["sha256"]
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        plain = int(
            subprocess.run(
                ["du", "-sb", str(unpacked)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
    print(
        f"| what (python runtime, {len(packages)} packages, amd64) | wall s (median of {args.runs}) | peak RSS MiB |"
    )
    print("|---|---:|---:|")
    for what, runs in results.items():
        print(
            f"| {what} | {statistics.median(w for w, _ in runs):.2f} | {statistics.median(r for _, r in runs):.0f} |"
        )
    print()
    print(f"image: {compressed / 2**20:.1f} MiB compressed, {uncompressed / 2**20:.1f} MiB uncompressed tar; "
          f"the same packages unpacked with dpkg-deb -x: {plain / 2**20:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
