"""Build-time SBOM of the python runtime image (amd64): what a build spends making it, and whether
the bytes are the same every time.

Each run is a fresh interpreter that does what ``bastion build`` does up to the SBOM (reads the lock,
takes the verified packages from the cache, assembles the tree in memory) and then times, with
``time.perf_counter``:

- ``imports``: the modules only the SBOM needs (the first image of a process pays them);
- ``scan``: :func:`bastion.pipeline._sbom.build_sbom` (the catalogers over the assembled tree, completed
  from the lock);
- ``embedded SPDX``: the copy written into the image, ``to_spdx(embedded_copy(sbom))`` (validated);
- ``attested SPDX + CycloneDX``: the two documents the build signs (with licence texts).

"first" is the first image of a process; "again" is the same
work repeated in that process, as for the second platform of a build. The SHA-256 of the embedded and
attested documents must be one value across all runs.

Needs the packages of ``catalog/python/python.lock.json`` in the tests' package cache
(``.cache/test-home/cache``; the first ``bastion build --locked`` or test run fills it).
Usage: ``python3 benchmarks/sbom_build.py [--runs 5]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "catalog" / "python" / "python.yaml"
PLATFORM = "linux/amd64"


def child(home: Path) -> dict[str, object]:
    from bastion.cache import Cache, Fetcher
    from bastion.catalog import load_definition
    from bastion.config import Settings
    from bastion.lock import fetch_packages, lock_path, read_lock
    from bastion.pipeline._assemble import PackageInput, assemble
    from bastion.pipeline._release import OsRelease, debian_release

    settings = Settings(home)
    definition = load_definition(DEFINITION)
    variant = definition.variant("runtime")
    lock = read_lock(lock_path(DEFINITION))
    with Fetcher(Cache(settings.cache_dir)) as fetcher:
        debs = fetch_packages(lock, fetcher, [("runtime", PLATFORM)])
    locked = lock.platform("runtime", PLATFORM)
    codename, version = debian_release(lock)
    epoch = variant.source_date_epoch if variant.source_date_epoch is not None else lock.source_date_epoch
    packages = [
        PackageInput(p.name, p.version, p.architecture, p.source, p.source_version, debs[p.sha256], p.sha256)
        for p in locked.packages
    ]
    rootfs = assemble(
        packages,
        variant,
        unpacked_dir=settings.cache_dir / "unpacked",
        source_date_epoch=epoch,
        os_release=OsRelease(variant.image, variant.tags[0], version, codename),
    )

    def once() -> dict[str, object]:
        t0 = time.perf_counter()
        # What only the SBOM needs (the assembly's modules are loaded by now): counted in the first
        # image's time, nothing in the next one's.
        from bastion.pipeline._sbom import build_sbom, embedded_copy
        from bastion.sbom import to_spdx

        imported = time.perf_counter()
        sbom = build_sbom(
            rootfs,
            locked,
            repository=variant.image,
            tag=variant.tags[0],
            platform=PLATFORM,
            epoch=epoch,
            cache_dir=settings.cache_dir,
        )
        t1 = time.perf_counter()
        embedded = to_spdx(embedded_copy(sbom))
        t2 = time.perf_counter()
        from bastion.sbom import to_cyclonedx

        attested = to_spdx(sbom) + to_cyclonedx(sbom)
        t3 = time.perf_counter()
        return {
            "imports": imported - t0,
            "scan": t1 - imported,
            "embedded": t2 - t1,
            "attested": t3 - t2,
            "packages": len(sbom.packages),
            "embedded_sha256": hashlib.sha256(embedded).hexdigest(),
            "attested_sha256": hashlib.sha256(attested).hexdigest(),
        }

    return {"first": once(), "again": once()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child))))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "cache").symlink_to(ROOT / ".cache" / "test-home" / "cache")
        cmd = [sys.executable, __file__, "--child", str(home)]
        runs = [
            json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
            for _ in range(args.runs)
        ]
    digests = {(r[w]["embedded_sha256"], r[w]["attested_sha256"]) for r in runs for w in ("first", "again")}
    print(
        f"| python runtime, {PLATFORM} ({runs[0]['first']['packages']} packages) | first image, ms | again, ms |"
    )
    print("|---|---:|---:|")
    parts = (
        ("imports", "imports only the SBOM needs"),
        ("scan", "scan of the assembled tree"),
        ("embedded", "embedded SPDX"),
    )
    for part, label in parts:
        first = statistics.median(r["first"][part] for r in runs) * 1000
        again = statistics.median(r["again"][part] for r in runs) * 1000
        print(f"| {label} | {first:.0f} | {again:.0f} |")
    total = [r[w]["imports"] + r[w]["scan"] + r[w]["embedded"] for r in runs for w in ("first", "again")]
    first_total = statistics.median(total[0::2]) * 1000
    again_total = statistics.median(total[1::2]) * 1000
    print(f"| **SBOM in the image (the three above)** | **{first_total:.0f}** | **{again_total:.0f}** |")
    first = statistics.median(r["first"]["attested"] for r in runs) * 1000
    again = statistics.median(r["again"]["attested"] for r in runs) * 1000
    print(
        f"| attested SPDX + CycloneDX, made one after the other here (a build makes the CycloneDX in a child beside the SPDX, after the image is written) | {first:.0f} | {again:.0f} |"
    )
    print(f"\nmedian of {args.runs} processes; distinct (embedded, attested) SHA-256 pairs: {len(digests)}")
    for embedded, attested in sorted(digests):
        print(f"- embedded {embedded[:16]}…, attested {attested[:16]}…")


if __name__ == "__main__":
    main()
