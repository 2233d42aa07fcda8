"""A Debian repository signed with the tests' throwaway key, served from a loopback server that
counts requests and answers conditional ones (ETag, If-None-Match) as a mirror's web server does.

The stanzas are bookworm's own control fields of a few packages (Package, Version, Architecture,
Source, Depends), with new versions written in to make a change; the trackers read the index only.
"""

from __future__ import annotations

import hashlib
import http.server
import lzma
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

# From bookworm main/binary-amd64 Packages (trimmed to the fields a resolver reads).
BOOKWORM = {
    "libc6": ("2.36-9+deb12u7", "glibc", "libgcc-s1"),
    "libgcc-s1": ("12.2.0-14", "gcc-12", "gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)"),
    "gcc-12-base": ("12.2.0-14", "gcc-12", ""),
    "libssl3": ("3.0.13-1~deb12u1", "openssl", "libc6 (>= 2.34)"),
    "netbase": ("6.4", "netbase", ""),
}


def write_repo(
    root: Path, sign: Callable[[bytes], bytes], versions: dict[str, str], *, suite: str = "bookworm"
) -> None:
    stanzas = []
    for name, (listed, source, depends) in BOOKWORM.items():
        version = versions.get(name, listed)
        digest = hashlib.sha256(f"{name}_{version}".encode()).hexdigest()
        stanza = f"Package: {name}\nSource: {source}\nVersion: {version}\nArchitecture: amd64\n"
        if depends:
            stanza += f"Depends: {depends}\n"
        stanza += f"Filename: pool/main/{name}_{version}_amd64.deb\nSize: 1000\nSHA256: {digest}\n"
        stanzas.append(stanza)
    packages = "\n".join(stanzas).encode()
    packages_xz = lzma.compress(packages)
    bindir = root / "dists" / suite / "main" / "binary-amd64"
    bindir.mkdir(parents=True, exist_ok=True)
    (bindir / "Packages.xz").write_bytes(packages_xz)
    lines = [f"Suite: {suite}", f"Codename: {suite}", f"Date: {format_datetime(datetime.now(UTC), usegmt=True)}",
             "Architectures: amd64", "Components: main", "SHA256:"]  # fmt: skip
    for name, blob in (("Packages.xz", packages_xz), ("Packages", packages)):
        lines.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} main/binary-amd64/{name}")
    (root / "dists" / suite / "InRelease").write_bytes(sign(("\n".join(lines) + "\n").encode()))


@dataclass
class Served:
    url: str
    requests: list[tuple[str, int]] = field(default_factory=list)

    def count(self, suffix: str) -> int:
        return sum(1 for path, _ in self.requests if path.endswith(suffix))


@contextmanager
def serve_repo(root: Path) -> Iterator[Served]:
    """Serve ``root``; a file's ETag is its SHA256, and a matching If-None-Match gets 304."""
    served = Served("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = root / self.path.lstrip("/")
            if not path.is_file():
                served.requests.append((self.path, 404))
                self.send_error(404)
                return
            data = path.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest() + '"'
            status = 304 if self.headers.get("If-None-Match") == etag else 200
            served.requests.append((self.path, status))
            self.send_response(status)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0" if status == 304 else str(len(data)))
            self.end_headers()
            if status == 200:
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def write_lock(definition: Path, repository: str, packages: dict[str, str]) -> None:
    """A lock file of ``definition`` holding ``packages`` (name -> version) from ``repository``."""
    from bastion.lock import LockFile

    locked = [
        {"name": name, "version": version, "architecture": "amd64", "source": BOOKWORM[name][1],
         "source-version": version, "filename": f"pool/main/{name}_{version}_amd64.deb",
         "sha256": hashlib.sha256(f"{name}_{version}".encode()).hexdigest(), "size": 1000,
         "repository": repository, "suite": "bookworm"}
        for name, version in packages.items()
    ]  # fmt: skip
    lock = LockFile.model_validate(
        {"definition": {"path": definition.name, "sha256": "sha256:" + "0" * 64}, "keyrings": [],
         "source-date-epoch": 0, "suites": [],
         "variants": {"runtime": {"linux/amd64": {"architecture": "amd64", "packages": locked}}}}
    )  # fmt: skip
    definition.with_name(definition.stem + ".lock.json").write_text(
        lock.model_dump_json(by_alias=True, indent=2)
    )
