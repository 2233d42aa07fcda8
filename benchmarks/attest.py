"""Attestation verification latency and registry throughput.

Builds the python runtime image (amd64) with a vulnerability database present, so it carries five
attestations per platform image where the data gives a VEX statement (SPDX, CycloneDX, SLSA, CVE scan,
and OpenVEX), starts Debian's docker-registry on a loopback port, and measures, median of ``--runs``:

- interpreter start-up (``bastion --version``), reported separately;
- ``bastion attest get IMAGE --type spdx --verify --key PUB`` on the local store;
- ``bastion verify IMAGE --policy FILE`` requiring every attached type, with two conditions;
- ``bastion push`` of the image (with its attestations) against ``skopeo copy`` of the same image,
  exported as an OCI layout, each into an empty repository; and ``bastion pull`` into an empty store.

Usage: ``python3 benchmarks/attest.py [--runs 5]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml
from _measure import measure

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "catalog" / "python" / "python.yaml"
DATA = ROOT.parent / "shared" / "data"
IMAGE = "bastion/python:3.11"


@contextmanager
def registry(tmp: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    (tmp / "config.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(tmp / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bastion = [sys.executable, "-m", "bastion"]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        env = {**base_env, "BASTION_HOME": str(home), "BASTION_PASSWORD": ""}
        run = lambda *a: subprocess.run([*bastion, *a], env=env, check=True, capture_output=True)  # noqa: E731
        run("db", "import", str(DATA / "kev"), str(DATA / "debian-tracker" / "tracker-json-sample.json"))
        run(
            "build",
            str(DEFINITION),
            "--locked",
            "--variant",
            "runtime",
            "--platform",
            "linux/amd64",
            "--skip-tests",
        )
        listing = run("attest", "list", IMAGE).stdout.decode()
        kinds = sorted({line.split()[1] for line in listing.splitlines()[1:] if line.strip()})
        key = str(home / "keys" / "bastion.pub")
        policy = tmp / "policy.yaml"
        policy.write_text(
            yaml.safe_dump(
                {
                    "required": kinds,
                    "keys": [key],
                    "conditions": [
                        {"predicate": "provenance", "path": "runDetails.builder.id",
                         "equals": "https://bastion.invalid/slsa/builders/local"},
                        {"predicate": "provenance", "path": "buildDefinition.externalParameters.locked", "equals": True},
                    ],
                }
            )
        )  # fmt: skip
        layout = tmp / "layout"
        run("export", IMAGE, f"oci-dir://{layout}:3.11", "--platform", "linux/amd64")
        size = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        with registry(tmp) as host:
            for i in range(args.runs):
                rows.setdefault("interpreter start-up (`bastion --version`)", []).append(
                    measure([*bastion, "--version"], env)
                )
                rows.setdefault("`attest get --type spdx --verify` (local store)", []).append(
                    measure(
                        [*bastion, "attest", "get", IMAGE, "--type", "spdx", "--verify", "--key", key], env
                    )
                )
                rows.setdefault(f"`verify --policy` ({len(kinds)} attestations, 2 conditions)", []).append(
                    measure([*bastion, "verify", IMAGE, "--policy", str(policy)], env)
                )
                rows.setdefault("`bastion push` (image + attestations) to an empty repository", []).append(
                    measure([*bastion, "push", IMAGE, f"{host}/push{i}/python:3.11"], env)
                )
                rows.setdefault("`skopeo copy oci:… docker://…` (image only) to an empty repository", []).append(
                    measure(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:3.11",
                             f"docker://{host}/skopeo{i}/python:3.11"], env)
                )  # fmt: skip
                pull_home = tmp / f"pull{i}"
                rows.setdefault("`bastion pull` (image + attestations) into an empty store", []).append(
                    measure(
                        [*bastion, "pull", f"{host}/push{i}/python:3.11"],
                        {**env, "BASTION_HOME": str(pull_home)},
                    )
                )
                shutil.rmtree(pull_home, ignore_errors=True)
    print(f"attestations on the image: {', '.join(kinds)}; image blobs {size / 2**20:.1f} MiB\n")
    print("| what | wall s (median) | peak RSS MiB |")
    print("|---|---:|---:|")
    for name, values in rows.items():
        print(
            f"| {name} | {statistics.median(v[0] for v in values):.3f} | {statistics.median(v[1] for v in values):.0f} |"
        )


if __name__ == "__main__":
    main()
