"""A hostile registry for the bounds tests: a loopback HTTP server whose answers each test writes.

``HostileRegistry`` serves ``documents`` (manifests and indexes by digest, and tags) and ``blobs``
honestly, and hands any request that ``attack`` claims to the test's own function, which writes
whatever it likes to the socket: endless bodies, a drip, loops. Every attack stops by itself within
``STOP_AFTER`` seconds, so a test run on code without the bound ends too (and fails on its timing).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
STOP_AFTER = 20.0  # seconds an attack's stream may last at most

Attack = Callable[[http.server.BaseHTTPRequestHandler], bool]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def document(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def index_of(children: list[tuple[str, str, int]]) -> bytes:
    """An image index listing ``(media type, digest, size)`` children, in order."""
    entries = [{"mediaType": m, "digest": d, "size": s} for m, d, s in children]
    return document({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})


@dataclass
class HostileRegistry:
    documents: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # digest or tag → (type, bytes)
    blobs: dict[str, bytes] = field(default_factory=dict)
    attack: Attack | None = None
    requests: list[str] = field(default_factory=list)
    host: str = ""

    def add(self, media_type: str, data: bytes, *tags: str) -> str:
        digest = digest_of(data)
        for name in (digest, *tags):
            self.documents[name] = (media_type, data)
        return digest


def send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def stream(handler: http.server.BaseHTTPRequestHandler, chunk: bytes, pause: float) -> None:
    """Write ``chunk`` again and again (chunked encoding) until the client leaves or STOP_AFTER."""
    ends = time.monotonic() + STOP_AFTER
    try:
        while time.monotonic() < ends:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
            time.sleep(pause)
        handler.wfile.write(b"0\r\n\r\n")
    except OSError:
        pass  # the client hung up: what a bounded client does


def _handler(registry: HostileRegistry) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            registry.requests.append(f"{self.command} {self.path}")
            if registry.attack is not None and registry.attack(self):
                self.close_connection = True
                return
            path = self.path.split("?", 1)[0]
            if path == "/v2/":
                send(self, 200, b"{}", Content_Type="application/json")
                return
            parts = path.split("/")  # /v2/<name>/<kind>/<ref>
            kind, ref = parts[-2], parts[-1]
            if kind == "manifests" and ref in registry.documents:
                media_type, data = registry.documents[ref]
                send(self, 200, data, Content_Type=media_type, Docker_Content_Digest=digest_of(data))
            elif kind == "blobs" and ref in registry.blobs:
                send(self, 200, registry.blobs[ref], Content_Type="application/octet-stream")
            else:
                body = document({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
                send(self, 404, body, Content_Type="application/json")

        do_GET = do_HEAD = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up mid-attack is the expected outcome


@contextmanager
def hostile_registry(registry: HostileRegistry) -> Iterator[HostileRegistry]:
    """Serve ``registry`` on a loopback port (``registry.host`` is ``127.0.0.1:PORT``)."""
    server = _Server(("127.0.0.1", 0), _handler(registry))
    registry.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
