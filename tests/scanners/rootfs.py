"""A larger real root filesystem for SBOM comparisons, built once and cached under ``.cache/scanners/``.

What it holds, all real:

* Debian bookworm packages: ``sbom-sample.yaml`` (beside this file) built as a dev image by the real
  ``bastion build``, so with a full dpkg database; it brings python3-pip and its dependencies, and a
  Go program (age);
* pip-installed wheels from PyPI in ``/usr/local/lib/python3.11/dist-packages`` (:data:`PIP_PINS`);
* npm packages from the npm registry in ``/opt/app`` (:data:`NPM_PINS`, resolved as of
  :data:`NPM_BEFORE` so that their dependencies are pinned too).

It is kept twice: as a directory (``rootfs/``) and as a one-manifest OCI layout (``layout/``, tag
:data:`TAG`): the Bastion image's layers plus one layer with the pip and npm trees. Building needs PyPI,
npm and the Debian mirror, so tests using it are marked ``network``; the result is cached under a key
made of the definition and the pins. ``python3 -m tests.scanners.rootfs`` builds it and prints where.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from bastion.oci import (
    HistoryEntry,
    Layer,
    LayerEntry,
    Platform,
    RuntimeConfig,
    Store,
    add_layer,
    put_image,
    put_index,
)
from tests.conftest import REPO_ROOT, mirror_home, run_cli
from tests.scanners.scan import Report, syft_scan, trivy_scan

DEFINITION = Path(__file__).with_name("sbom-sample.yaml")
IMAGE = "bastion-test/sbom-sample"
TAG = "1"
PLATFORM = "linux/amd64"
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
APP = "opt/app"
# requests with every dependency, and six: pure-python wheels, pinned whole (installed with --no-deps).
PIP_PINS = (
    "certifi==2024.8.30",
    "charset-normalizer==3.4.0",
    "idna==3.10",
    "requests==2.32.3",
    "six==1.16.0",
    "urllib3==2.2.3",
)
NPM_PINS = ("express@4.21.1", "left-pad@1.3.0", "lodash@4.17.21")
NPM_BEFORE = "2024-12-01"  # npm --before: dependency ranges resolve as they did on that day
LAYOUT_VERSION = 2  # bump when the way the sample is made changes


@dataclass(frozen=True)
class SampleRootfs:
    """A built sample: ``root`` (directory), ``layout`` (OCI layout with one manifest, tag ``TAG``)."""

    home: Path  # .cache/scanners/rootfs/<key>
    root: Path
    layout: Path
    manifest: dict[str, object]

    @property
    def debian(self) -> set[str]:
        """The Debian packages resolved for it, as ``name=version``."""
        listed = self.manifest["debian"]
        assert isinstance(listed, list)
        return {str(item) for item in listed}


def cache_key() -> str:
    pins = {
        "version": LAYOUT_VERSION,
        "definition": DEFINITION.read_text(),
        "pip": PIP_PINS,
        "npm": NPM_PINS,
        "npm-before": NPM_BEFORE,
        "platform": PLATFORM,
    }
    return hashlib.sha256(json.dumps(pins, sort_keys=True).encode()).hexdigest()[:16]


def sample_rootfs(cache_dir: Path | None = None, mirror: Path | None = None) -> SampleRootfs:
    """The sample under ``cache_dir`` (default ``.cache/scanners``), built if it is not there yet."""
    base = (cache_dir or REPO_ROOT / ".cache" / "scanners") / "rootfs"
    base.mkdir(parents=True, exist_ok=True)
    target = base / cache_key()
    with FileLock(str(target) + ".lock"):
        if not (target / "manifest.json").is_file():
            with tempfile.TemporaryDirectory(dir=base, prefix=".build-") as tmp:
                work = Path(tmp) / "out"
                _build(Path(tmp), work, mirror or mirror_home())
                shutil.rmtree(target, ignore_errors=True)
                work.rename(target)
    return SampleRootfs(
        target, target / "rootfs", target / "layout", json.loads((target / "manifest.json").read_text())
    )


def _check(args: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


def _cli(*args: str, home: Path) -> str:
    result = run_cli(*args, home=home)
    if result.code != 0:
        raise RuntimeError(f"bastion {' '.join(args)} exited {result.code}:\n{result.stderr[-3000:]}")
    return result.stdout


def _build(tmp: Path, out: Path, mirror: Path) -> None:
    home = tmp / "home"
    home.mkdir()
    shared = mirror.resolve() / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(shared)  # share the verified package cache
    definition = tmp / "definition" / DEFINITION.name
    definition.parent.mkdir()
    shutil.copyfile(DEFINITION, definition)  # the lock file is written beside it, outside the repository
    ref = f"{IMAGE}:{TAG}"
    _cli("build", str(definition), "--variant", "dev", "--platform", PLATFORM, "--skip-tests", home=home)
    base_layout = tmp / "base-layout"
    _cli(
        "export",
        ref,
        f"oci-dir://{base_layout}:{TAG}",
        "--platform",
        PLATFORM,
        "--no-attestations",
        home=home,
    )

    root = out / "rootfs"
    root.mkdir(parents=True)
    _unpack(base_layout, root)
    _check(
        [
            sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
            "--only-binary=:all:", "--python-version", "3.11", "--implementation", "py", "--abi", "none",
            "--platform", "any", "--no-compile", "--target", str(root / SITE_PACKAGES), *PIP_PINS,
        ]
    )  # fmt: skip
    app = root / APP
    app.mkdir(parents=True)
    # A project file first, so npm records the pins in package.json and writes package-lock.json.
    (app / "package.json").write_text(
        json.dumps({"name": "sbom-sample-app", "version": "1.0.0", "private": True})
    )
    _check(
        [
            "npm", "install", "--save-exact", "--prefix", str(app), "--before", NPM_BEFORE, "--ignore-scripts",
            "--no-audit", "--no-fund", "--no-update-notifier", *NPM_PINS,
        ]
    )  # fmt: skip

    lock = json.loads(definition.with_name("sbom-sample.lock.json").read_text())
    digest = _add_app_layer(Store(home / "store"), ref, root, int(lock["source-date-epoch"]))
    _cli(
        "export",
        ref,
        f"oci-dir://{out / 'layout'}:{TAG}",
        "--platform",
        PLATFORM,
        "--no-attestations",
        home=home,
    )
    shutil.copyfile(definition.with_name("sbom-sample.lock.json"), out / "sbom-sample.lock.json")
    debian = lock["variants"]["dev"][PLATFORM]["packages"]
    manifest = {
        "key": cache_key(),
        "image": ref,
        "index-digest": digest,
        "debian": sorted(f"{p['name']}={p['version']}" for p in debian),
        "pip": list(PIP_PINS),
        "npm": list(NPM_PINS),
        "npm-before": NPM_BEFORE,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _unpack(layout: Path, root: Path) -> None:
    """Apply the layout's one manifest's layers in order.

    Hand-written rather than through umoci so the builder needs no more host tools; tarfile's "tar"
    filter refuses absolute paths and paths leaving ``root``. A Bastion image is made in one build and
    never deletes, so a whiteout (image-spec layer.md "Whiteouts") would mean a foreign layout: refused.
    """
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    manifest = json.loads(_blob(layout, entry["digest"]).read_text())
    for layer in manifest["layers"]:
        with tarfile.open(_blob(layout, layer["digest"]), "r:*") as tar:
            for member in tar.getmembers():
                if Path(member.name).name.startswith(".wh."):
                    raise RuntimeError(f"{layout}: layer {layer['digest']} has a whiteout {member.name}")
            tar.extractall(root, filter="tar")


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _tree_entries(root: Path, top: str, epoch: int) -> Iterator[LayerEntry]:
    """``top`` and everything under it as layer entries owned by root, with each parent directory."""
    parts = top.split("/")
    for i in range(1, len(parts)):
        yield LayerEntry("/".join(parts[:i]), "dir", 0o755, 0, 0, epoch)
    for path in [root / top, *sorted((root / top).rglob("*"))]:
        info = path.lstat()
        rel = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            yield LayerEntry(rel, "dir", mode, 0, 0, epoch)
        elif stat.S_ISLNK(info.st_mode):
            yield LayerEntry(rel, "symlink", 0o777, 0, 0, epoch, linkname=os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            yield LayerEntry(rel, "file", mode, 0, 0, epoch, source=path)
        else:
            raise RuntimeError(f"{path}: not a file, directory or symlink")


def _add_app_layer(store: Store, ref: str, root: Path, epoch: int) -> str:
    """Put the pip and npm trees on top of the built image as one more layer; tag the result ``ref``."""
    index = store.read_index(store.resolve(ref))
    (base,) = index.manifests
    manifest = store.read_manifest(base)
    config = json.loads(store.read_blob(manifest.config.digest))
    diff_ids = config["rootfs"]["diff_ids"]
    entries: dict[str, LayerEntry] = {}
    for tree in (SITE_PACKAGES, APP):
        for item in _tree_entries(root, tree, epoch):
            entries.setdefault(item.path, item)
    app = add_layer(store, entries.values(), source_date_epoch=epoch)
    layers = [Layer(d, diff_id) for d, diff_id in zip(manifest.layers, diff_ids, strict=True)] + [app]
    history = [HistoryEntry("bastion build") for _ in diff_ids] + [
        HistoryEntry(f"pip install {' '.join(PIP_PINS)}; npm install {' '.join(NPM_PINS)}")
    ]
    runtime = RuntimeConfig(user="0", env=tuple(config["config"].get("Env", ())), working_dir="/root")
    image = put_image(
        store,
        platform=Platform.parse(PLATFORM),
        layers=layers,
        runtime=runtime,
        source_date_epoch=epoch,
        history=history,
    )
    top = put_index(store, [image])
    store.tag(ref, top)
    return top.digest


# Each scan of the sample: name -> (tool, target). Syft's dir: source uses its "directory" catalogers
# (declared packages: lock files) and oci-dir: its "image" ones (installed packages); Trivy's rootfs and
# image both look for installed packages.
SCANS = {
    "syft-dir": ("syft", "dir:{root}"),
    "syft-oci": ("syft", "oci-dir:{layout}"),
    "trivy-rootfs": ("trivy", "rootfs:{root}"),
    "trivy-image": ("trivy", "image:{layout}"),
}


def scan_sample(sample: SampleRootfs, syft: Path, trivy: Path) -> dict[str, Report]:
    """Run every scan in :data:`SCANS`; keep each raw report and its package list in ``<home>/scans``."""
    out = sample.home / "scans"
    out.mkdir(exist_ok=True)
    reports: dict[str, Report] = {}
    with tempfile.TemporaryDirectory() as cache:
        for name, (tool, pattern) in SCANS.items():
            target = pattern.format(root=sample.root, layout=sample.layout)
            raw = out / f"{name}.raw.json"
            if tool == "syft":
                reports[name] = syft_scan(syft, target, raw)
            else:
                reports[name] = trivy_scan(trivy, target, raw, Path(cache))
            listing = {"scan": name, "target": target, **reports[name].to_json()}
            (out / f"{name}.packages.json").write_text(json.dumps(listing, indent=1) + "\n")
    return reports


if __name__ == "__main__":
    sample = sample_rootfs()
    print(f"rootfs {sample.root}\nlayout {sample.layout}:{TAG}")
    if len(sys.argv) == 3:  # python3 -m tests.scanners.rootfs SYFT TRIVY: scan it too
        for scan, report in scan_sample(sample, Path(sys.argv[1]), Path(sys.argv[2])).items():
            print(scan, report.counts())
