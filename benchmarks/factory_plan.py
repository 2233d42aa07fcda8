"""``bastion factory plan`` over a generated catalog of 1,000 definitions, and what polling 1,000
``debian-package`` trackers costs against an unchanged loopback repository.

The catalog: 100 chains of ``from:`` (depth 1 to 10), each definition tracking one package of a
signed loopback repository (tests/factory/signed_repo.py) and every third holding a lock file of
shared packages. Reported: the median wall time of the command over N runs, less the median of the
same command over an empty catalog (start-up); with ``--instructions``, the instructions each of
the two executes (valgrind's cachegrind: the same however loaded the machine is); ``/proc/loadavg``
before and after; the requests the server saw for a recorded poll.
Usage: ``python3 benchmarks/factory_plan.py [--runs 5] [--definitions 1000] [--instructions]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _measure import instructions, measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.factory.signed_repo import BOOKWORM, serve_repo, write_lock, write_repo  # noqa: E402


def _key(home: Path) -> tuple[Path, str]:
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "Bench <b@example.invalid>", "ed25519", "sign", "1d"],
                   check=True, capture_output=True)  # fmt: skip
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    keyring = home / "keyring.gpg"
    keyring.write_bytes(
        subprocess.run([*gpg, "--export", fingerprint], check=True, capture_output=True).stdout
    )
    return keyring, fingerprint


def _catalog(directory: Path, url: str, keyring: Path, count: int) -> None:
    directory.mkdir()
    names = list(BOOKWORM)
    repo = f"contents: {{repositories: [{{uri: '{url}', suites: [bookworm]}}], keyring: '{keyring}'}}\n"
    for n in range(count):
        chain, depth = divmod(n, 10)
        package = names[n % len(names)]
        text = f"name: image-{n:04d}\n{repo}"
        text += f"track: [{{kind: debian-package, package: {package}, vars: {{V: {{value: '{BOOKWORM[package][0]}'}}}}}}]\n"
        if depth:
            text += f"from: image-{chain * 10 + depth - 1:04d}\n"
        path = directory / f"image-{n:04d}.yaml"
        path.write_text(text)
        if n % 3 == 0:
            write_lock(path, url, {p: BOOKWORM[p][0] for p in names[: 2 + n % 3]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--definitions", type=int, default=1000)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        keyring, fingerprint = _key(tmpdir / "gnupg")

        def sign(text: bytes) -> bytes:
            return subprocess.run(["gpg", "--homedir", str(tmpdir / "gnupg"), "--batch", "--local-user", fingerprint,
                                   "--clearsign"], input=text, check=True, capture_output=True).stdout  # fmt: skip

        write_repo(tmpdir / "mirror", sign, {})
        with serve_repo(tmpdir / "mirror") as served:
            _catalog(tmpdir / "catalog", served.url, keyring, args.definitions)
            (tmpdir / "empty").mkdir()
            env["BASTION_HOME"] = str(tmpdir / "home")
            bastion = [sys.executable, "-m", "bastion", "factory", "plan", "--format", "json", "--catalog"]
            measure([*bastion, str(tmpdir / "catalog")], env)  # warm the parsed-index cache
            full = [measure([*bastion, str(tmpdir / "catalog")], env)[0] for _ in range(args.runs)]
            empty = [measure([*bastion, str(tmpdir / "empty")], env)[0] for _ in range(args.runs)]
            counted = (
                [instructions([*bastion, str(tmpdir / d)], env) for d in ("catalog", "empty")]
                if args.instructions
                else None
            )

            from bastion.config import Settings
            from bastion.factory import load_catalog, open_state, poll

            settings = Settings(tmpdir / "home")
            catalog = load_catalog(tmpdir / "catalog")
            with open_state(settings) as state:
                state.record(poll(catalog, settings, state.trackers()).states())
                before = len(served.requests)
                second = poll(catalog, settings, state.trackers())
            seen = served.requests[before:]
    trackers = sum(1 for ref, _ in second.trackers)
    print(
        f"| definitions | trackers | plan (median of {args.runs}) | start-up (empty catalog) | beyond start-up |"
    )
    print("|---|---|---|---|---|")
    f, e = statistics.median(full), statistics.median(empty)
    print(f"| {args.definitions} | {trackers} | {f:.2f} s | {e:.2f} s | {f - e:.2f} s |")
    if counted is not None:
        full_i, empty_i = counted
        print(f"\ninstructions: plan {full_i / 1e9:.2f} G, start-up (empty catalog) {empty_i / 1e9:.2f} G, "
              f"beyond start-up {(full_i - empty_i) / 1e9:.2f} G")  # fmt: skip
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"/proc/loadavg before {' '.join(load_before)}, after {' '.join(load_after)}")
    print(
        f"\nrecorded poll of {trackers} debian-package trackers, unchanged repository: {len(seen)} request(s) {seen}"
    )


if __name__ == "__main__":
    main()
