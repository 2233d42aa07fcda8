"""No-op jobs through the broker with two ``bastion factory worker`` processes: jobs per second.

Starts Debian's ``redis-server`` on a loopback port (no persistence) and two workers (``--concurrency
1`` each, the factory's settings: late acknowledgement, prefetch 1), sends ``--jobs`` no-op tasks
(``bastion.factory.noop``) to the ``routine`` queue, and times from the first send until the broker
holds none of them, queued or unacknowledged (every job acknowledged after it ran). A warm-up batch
first, so the workers' start-up is not counted. Reported: the median jobs/s of ``--runs`` batches.
Usage: ``python3 benchmarks/factory_jobs.py [--jobs 500] [--runs 3]`` (``PYTHONPATH=src``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drain(client: object, deadline: float) -> None:
    """Until nothing is queued or unacknowledged."""
    while time.monotonic() < deadline:
        if client.llen("routine") == 0 and client.hlen("unacked") == 0:  # type: ignore[attr-defined]
            return
        time.sleep(0.005)
    raise SystemExit("the workers did not drain the queue in time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import redis

    from bastion.config import Settings
    from bastion.factory import FactoryConfig, celery_app

    root = Path(tempfile.mkdtemp(prefix="bastion-bench-jobs-"))
    port = _free_port()
    (root / "redis.conf").write_text(f'bind 127.0.0.1\nport {port}\ndir {root}\nsave ""\nappendonly no\n')
    server = subprocess.Popen(["redis-server", str(root / "redis.conf")], stdout=subprocess.DEVNULL)
    broker = f"redis://127.0.0.1:{port}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_HOME": str(root / "home"), "BASTION_FACTORY_BROKER": broker})
    command = [sys.executable, "-m", "bastion", "factory", "worker"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    workers = [subprocess.Popen(command, env=env, start_new_session=True, **quiet) for _ in range(2)]
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        os.environ.update({"BASTION_HOME": str(root / "home"), "BASTION_FACTORY_BROKER": broker})
        app = celery_app(FactoryConfig.from_env(Settings.from_env()))
        noop = app.tasks["bastion.factory.noop"]

        def batch(count: int) -> float:
            started = time.perf_counter()
            for number in range(count):
                noop.apply_async((number,), queue="routine")
            _drain(client, time.monotonic() + 900)
            return time.perf_counter() - started

        batch(20)  # warm-up: both workers connected and their pools forked
        rates = [args.jobs / batch(args.jobs) for _ in range(args.runs)]
        print(f"{args.jobs} no-op jobs, 2 workers, {args.runs} runs: "
              f"median {statistics.median(rates):.0f} jobs/s (min {min(rates):.0f}, max {max(rates):.0f})")  # fmt: skip
        print("loadavg:", Path("/proc/loadavg").read_text().strip())
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
