"""Fixtures of the factory tests: PostgreSQL 15 and Redis from Debian's packages on loopback ports,
and a loopback HTTP server that replays recorded answers (GitHub's REST API shape, hostile upstreams)."""

from __future__ import annotations

import http.server
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.registry.conftest import free_port, registry  # noqa: F401  (the loopback docker-registry fixture)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = Path("/usr/bin/redis-server")
GITHUB = Path(__file__).with_name("github")


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Replay:
    """Answers by path; ``requests`` counts what the server saw (path, If-None-Match)."""

    url: str
    routes: dict[str, Route | Callable[[http.server.BaseHTTPRequestHandler], Route]]
    requests: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture
def replay() -> Iterator[Replay]:
    state = Replay("", {})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("If-None-Match")))
            route = state.routes.get(self.path) or state.routes.get(self.path.split("?")[0])
            if callable(route):
                route = route(self)
            if route is None:
                route = Route(404, b'{"message": "Not Found"}')
            etag = route.headers.get("ETag")
            if etag is not None and self.headers.get("If-None-Match") == etag:
                route = Route(304, b"", route.headers)
            self.send_response(route.status)
            for key, value in route.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL 15 server of Debian's postgresql-15 package on a loopback port, run as ``nobody``
    when the tests run as root (initdb refuses root); its URL. Skipped without the binaries."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    pytest.importorskip("psycopg")
    root = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    data, port = root / "data", free_port()
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "bastion", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, env=env, cwd=root)  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True, env=env, cwd=root)  # fmt: skip
    try:
        yield f"postgresql://bastion@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True, env=env, cwd=root)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_postgres(postgres: str) -> str:
    """A database of its own on the session's server."""
    import uuid

    import psycopg

    name = "t" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.rsplit("/", 1)[0] + "/" + name


@dataclass
class RedisProcess:
    """Debian's redis-server on a loopback port with its own config in a temp directory; with
    ``persistent`` every write is in its append-only file before it is answered (appendfsync
    always), so :meth:`restart` loses no message."""

    root: Path
    port: int
    persistent: bool
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        config = self.root / "redis.conf"
        config.write_text(
            f"bind 127.0.0.1\nport {self.port}\nprotected-mode yes\ndir {self.root}\ndaemonize no\n"
            f'logfile {self.root / "redis.log"}\nsave ""\n'
            + ("appendonly yes\nappendfsync always\n" if self.persistent else "appendonly no\n")
        )
        self.process = subprocess.Popen([str(REDIS_SERVER), str(config)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.root / 'redis.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis-server flushes its append-only file and exits
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _redis(persistent: bool) -> Iterator[RedisProcess]:
    if not REDIS_SERVER.is_file():
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    server = RedisProcess(Path(tempfile.mkdtemp(prefix="bastion-redis-")), free_port(), persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A Redis broker without persistence, stopped after the test."""
    yield from _redis(persistent=False)


@pytest.fixture
def persistent_redis() -> Iterator[RedisProcess]:
    """A Redis broker with an append-only file, for tests that restart it."""
    yield from _redis(persistent=True)
