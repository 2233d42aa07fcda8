"""``bastion source build`` of the catalog's example (zlib with Bastion's patch) against ``dpkg-buildpackage``
run directly on the same source in the same build root (issue 21).

Each pair, one after the other, from a warm cache (the verified source files, the indices and the build
root made once before the pairs; ``--home`` names a BASTION_HOME that has them, e.g. the test home):

1. ``bastion source build catalog/packages/zlib/zlib.yaml`` into a fresh BASTION_HOME whose ``cache`` is a
   link to the warm one (a new signing key each time): verify the source against the signed Sources index,
   unpack and patch in the sandbox, the build root found in the cache by its package set, the build in
   the sandbox, provenance signed, the packages published to the signed repository;
2. the same source (the cached files the build verified) unpacked with ``dpkg-source -x`` and the same
   patch added as a quilt patch on the host, then ``dpkg-buildpackage -b -us -uc`` in bubblewrap with that
   build root read-only as ``/``, the tree at the same path, no network (``SOURCE_DATE_EPOCH`` from the changelog, as dpkg-buildpackage sets it).

Wall time per run; the report gives the medians with min-max, the ratio per pair and ``/proc/loadavg``'s
one-minute figure before each pair. Usage, as root: ``python3 benchmarks/source_build.py --home DIR
[--pairs 3]``.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "catalog" / "packages" / "zlib" / "zlib.yaml"
PATCH = DEFINITION.parent / "document-header-bounds.patch"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def bastion_build(warm: Path, work: Path) -> tuple[float, dict[str, object]]:
    home = work / "home"
    home.mkdir()
    (home / "cache").symlink_to(warm.resolve() / "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")} | {"BASTION_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bastion", "source", "build", str(DEFINITION)], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(proc.stderr[-2000:])
    return seconds, json.loads(proc.stdout)


def source_files(warm: Path) -> dict[str, Path]:
    """The cached files of zlib's source package, found and verified as the build finds them."""
    from bastion.cache import Cache, Fetcher
    from bastion.catalog import load_package_definition
    from bastion.debian import fetch_source, find_source, host_sources, open_suites

    definition = load_package_definition(DEFINITION)
    with Fetcher(Cache(warm / "cache")) as fetcher:
        suites = open_suites(host_sources(), fetcher, keyring=DEFINITION.parent / definition.keyring)
        record = find_source(suites, definition.source, definition.version, fetcher)
        return fetch_source(record, fetcher)


def direct_build(files: dict[str, Path], build_root: Path, work: Path) -> float:
    """dpkg-source -x, the patch as a quilt patch, then (timed) dpkg-buildpackage in the build root."""
    src, out = work / "src", work / "build"
    src.mkdir(parents=True)
    out.mkdir()
    for name, path in files.items():
        shutil.copyfile(path, src / name)
    dsc = next(name for name in files if name.endswith(".dsc"))
    tree = out / "zlib-1.2.13.dfsg"
    subprocess.run(
        ["dpkg-source", "--no-check", "-x", str(src / dsc), str(tree)], check=True, capture_output=True
    )
    patches = tree / "debian" / "patches"
    patches.mkdir(exist_ok=True)
    shutil.copyfile(PATCH, patches / "bastion-01-document-header-bounds.patch")
    with (patches / "series").open("a") as series:
        series.write("bastion-01-document-header-bounds.patch\n")
    command = [
        "bwrap", "--ro-bind", str(build_root), "/", "--bind", str(out), "/build", "--proc", "/proc",
        "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-all", "--die-with-parent",
        "--chdir", f"/build/{tree.name}", "--clearenv", "--setenv", "PATH", PATH, "--setenv", "LC_ALL",
        "C.UTF-8", "--setenv", "TZ", "UTC", "--setenv", "HOME", "/tmp", "dpkg-buildpackage", "-b", "-us", "-uc",
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(proc.stdout[-2000:] + proc.stderr[-2000:])
    return seconds


def span(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True, help="a BASTION_HOME with the warm cache")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    ours: list[float] = []
    direct: list[float] = []
    loads: list[float] = []
    files = source_files(args.home)
    for _ in range(args.pairs):
        loads.append(load())
        with tempfile.TemporaryDirectory(prefix="bench-source-") as tmp:
            seconds, summary = bastion_build(args.home, Path(tmp))
            ours.append(seconds)
            root = args.home / "cache" / "buildroots" / "amd64" / str(summary["build-root"])
            direct.append(direct_build(files, root, Path(tmp) / "direct"))
            print(f"pair: bastion {ours[-1]:.1f} s, dpkg-buildpackage {direct[-1]:.1f} s, load {loads[-1]}",
                  file=sys.stderr)  # fmt: skip
    print(f"| bastion source build | {span(ours)} |")
    print(f"| dpkg-buildpackage in the same build root | {span(direct)} |")
    print(f"| ratio per pair | {span([a / b for a, b in zip(ours, direct, strict=True)])} |")
    print(f"| load before each pair | {', '.join(f'{x:.1f}' for x in loads)} |")


if __name__ == "__main__":
    main()
