"""The default ``bastion build`` against ``mmdebstrap --variant=extract``, interleaved pairs (issue 19).

For each image (the python runtime image of ``catalog/python/python.yaml`` on amd64, and the 317-package
``benchmarks/large/large.yaml``), each pair runs, one after the other:

1. the default build a user types first: ``bastion build DEF --locked`` (the python image limited to
   ``--variant runtime --platform linux/amd64``, the package set mmdebstrap makes), signed with the key
   ``bastion keygen`` made in ``BASTION_HOME/keys``, image tests run; then the variants
   ``--no-attest --skip-tests`` and ``--skip-tests`` (signed, no tests). Each starts from an empty store
   and the warm package cache (verified .debs, unpacked packages, compressed layer parts).
2. ``mmdebstrap --variant=extract --include=<the locked packages>`` with an ``--extract-hook`` writing the
   dpkg status (Bastion writes ``status.d``), to a tar, from a local flat repository made once from the
   same .debs (hard links into a ``pool/`` and a ``Packages`` file by ``dpkg-scanpackages``), with the
   few packages apt's dependencies add that Bastion's prune list drops (so mmdebstrap extracts slightly
   more): no network in either.

Then the cold pairs: the default build with an empty ``BASTION_HOME`` (a new key) against mmdebstrap
from the lock's own repositories (the host's mirror), which downloads every package on each run.

Wall time and peak RSS (the largest resident set of the command or any of its children, as
``/usr/bin/time -f %M``) per run; the table gives medians with min-max, the ratio Bastion ÷ mmdebstrap
per pair (median, min-max) and ``/proc/loadavg``'s one-minute figure before each pair.
Usage: ``python3 benchmarks/vs_mmdebstrap.py [--pairs 5] [--cold-pairs 5] [--images python,large]
[--cold-images python] [--seed DIR]`` (``--seed``: a BASTION_HOME whose ``cache/sha256`` and
``cache/indices`` are hard-linked in, so filling the warm cache downloads nothing). Run as root (the
image tests then run as they do for root; mmdebstrap's extract needs no root but is run the same way).
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
from dataclasses import dataclass, field
from pathlib import Path

from _measure import measure

ROOT = Path(__file__).resolve().parent.parent
IMAGES = {
    "python": (
        ROOT / "catalog" / "python" / "python.yaml",
        ["--variant", "runtime", "--platform", "linux/amd64"],
    ),
    "large": (ROOT / "benchmarks" / "large" / "large.yaml", []),
}
STATUS_HOOK = (
    'for f in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb -f "$f"; echo "Status: install ok installed"; echo; done'
    ' > "$1"/var/lib/dpkg/status'
)
PASSWORD = "benchmark"
VARIANTS = [
    ("default: signed, image tests", []),
    ("--no-attest --skip-tests", ["--no-attest", "--skip-tests"]),
    ("--skip-tests (signed)", ["--skip-tests"]),
]


@dataclass
class Row:
    runs: list[tuple[float, float]] = field(default_factory=list)
    peers: list[tuple[float, float]] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def locked_packages(definition: Path) -> list[dict[str, str]]:
    lock = json.loads(definition.with_suffix(".lock.json").read_text())
    return list(lock["variants"]["runtime"]["linux/amd64"]["packages"])


def mirrors(definition: Path) -> list[str]:
    lock = json.loads(definition.with_suffix(".lock.json").read_text())
    return [f"deb {s['repository']} {s['suite']} main" for s in lock["suites"]]


def local_repository(packages: list[dict[str, str]], cache: Path, repo: Path, definition: Path) -> str:
    """A flat repository for mmdebstrap: the locked .debs (hard links to Bastion's verified cache) and
    the packages apt adds to them that Bastion's prune list leaves out (``docs/definitions.md``), taken
    from one mmdebstrap run against the lock's repositories (not measured)."""
    pool = repo / "pool"
    pool.mkdir(parents=True)
    for p in packages:
        name = f"{p['name']}_{p['version'].replace(':', '%3a')}_{p['architecture']}.deb"
        os.link(cache / "sha256" / p["sha256"][:2] / p["sha256"], pool / name)
    fetched = repo.with_name(repo.name + "-fetched")
    fetched.mkdir()
    hook = f'cp "$1"/var/cache/apt/archives/*.deb {fetched}'
    out = repo.with_name(repo.name + ".tar")
    subprocess.run([*mmdebstrap(packages, out, mirrors(definition))[:-1], f"--extract-hook={hook}"],
                   check=True, capture_output=True)  # fmt: skip
    out.unlink()
    locked = {p["name"] for p in packages}
    for deb in fetched.iterdir():
        if deb.name.split("_", 1)[0] not in locked:
            deb.rename(pool / deb.name)
    shutil.rmtree(fetched)
    scanned = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "pool"], cwd=repo, capture_output=True, check=True
    ).stdout
    (repo / "Packages").write_bytes(scanned)
    return f"deb [trusted=yes] copy://{repo} ./"  # file:// would leave the .debs outside the chroot


def mmdebstrap(packages: list[dict[str, str]], out: Path, sources: list[str]) -> list[str]:
    """The command, with the status hook last (the setup run replaces it)."""
    return [
        "mmdebstrap",
        "--quiet",
        "--variant=extract",
        f"--include={','.join(p['name'] for p in packages)}",
        "--architectures=amd64",
        "bookworm",
        str(out),
        *sources,
        f"--extract-hook={STATUS_HOOK}",
    ]


def fresh_home(path: Path, env: dict[str, str], cache: Path | None) -> dict[str, str]:
    """An empty BASTION_HOME with a key made by ``bastion keygen`` (and the warm cache, when given)."""
    if path.exists():
        shutil.rmtree(path)
    (path / "keys").mkdir(parents=True)
    if cache is not None:
        (path / "cache").symlink_to(cache)
    henv = {**env, "BASTION_HOME": str(path)}
    subprocess.run(
        [sys.executable, "-m", "bastion", "keygen", "--output-key-prefix", str(path / "keys" / "bastion")],
        env=henv, check=True, capture_output=True,
    )  # fmt: skip
    return henv


def seed_cache(seed: Path, cache: Path) -> None:
    for part in ("sha256", "indices"):
        if (seed / "cache" / part).is_dir():
            subprocess.run(["cp", "-al", str(seed / "cache" / part), str(cache / part)], check=True)


def span(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--cold-pairs", type=int, default=5)
    parser.add_argument("--images", default="python,large")
    parser.add_argument("--cold-images", default="python")
    parser.add_argument("--seed", type=Path, help="a BASTION_HOME whose verified .debs and indices to reuse")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["BASTION_PASSWORD"] = PASSWORD
    bastion = [sys.executable, "-m", "bastion"]
    rows: dict[tuple[str, str], Row] = {}
    with tempfile.TemporaryDirectory(prefix="vs-mmdebstrap-", dir=os.environ.get("TMPDIR")) as tmp:
        tmpdir = Path(tmp)
        warm = tmpdir / "warm"
        (warm / "cache").mkdir(parents=True)
        if args.seed is not None:
            seed_cache(args.seed, warm / "cache")
        for image in args.images.split(","):
            definition, limits = IMAGES[image]
            build = [*bastion, "build", str(definition), "--locked", *limits]
            packages = locked_packages(definition)
            # Fill the warm cache: .debs, unpacked packages, compressed layer parts (not measured).
            subprocess.run([*build, "--skip-tests", "--no-attest"], env={**env, "BASTION_HOME": str(warm)},
                           check=True, capture_output=True)  # fmt: skip
            local = local_repository(packages, warm / "cache", tmpdir / f"repo-{image}", definition)
            for _ in range(args.pairs):
                before = load()
                home = tmpdir / "home"
                for what, extra in VARIANTS:
                    henv = fresh_home(home, env, warm / "cache")
                    row = rows.setdefault((f"{image} ({len(packages)} packages)", what), Row())
                    row.runs.append(measure([*build, *extra], henv))
                    row.loads.append(before)
                out = tmpdir / "mm.tar"
                peer = measure(mmdebstrap(packages, out, [local]), env)
                out.unlink()
                for what, _ in VARIANTS:
                    rows[(f"{image} ({len(packages)} packages)", what)].peers.append(peer)
                shutil.rmtree(home)
        for image in args.cold_images.split(",") if args.cold_images else []:
            definition, limits = IMAGES[image]
            build = [*bastion, "build", str(definition), "--locked", *limits]
            packages = locked_packages(definition)
            for _ in range(args.cold_pairs):
                before = load()
                home = tmpdir / "cold"
                henv = fresh_home(home, env, None)
                row = rows.setdefault(
                    (f"{image} ({len(packages)} packages)", "cold: empty caches, host mirror"), Row()
                )
                row.runs.append(measure(build, henv))
                shutil.rmtree(home)
                out = tmpdir / "mm.tar"
                row.peers.append(measure(mmdebstrap(packages, out, mirrors(definition)), env))
                out.unlink()
                row.loads.append(before)
    print("| image | bastion build | bastion wall s | mmdebstrap wall s | bastion ÷ mmdebstrap | "
          "bastion peak RSS MiB | mmdebstrap peak RSS MiB | load (1 min) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (image, what), row in rows.items():
        ratios = [b[0] / m[0] for b, m in zip(row.runs, row.peers, strict=True)]
        print(
            f"| {image} | {what} | {span([w for w, _ in row.runs], '.2f')} | {span([w for w, _ in row.peers], '.2f')}"
            f" | {span(ratios, '.2f')} | {span([r for _, r in row.runs], '.0f')}"
            f" | {span([r for _, r in row.peers], '.0f')} | {min(row.loads):.1f}-{max(row.loads):.1f} |"
        )
    print(f"\n{len(next(iter(rows.values())).runs) if rows else 0} pairs per row; commit "
          + subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True,
                           text=True).stdout.strip())  # fmt: skip


if __name__ == "__main__":
    main()
