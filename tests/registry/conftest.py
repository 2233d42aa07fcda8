"""A real registry for the registry client's tests: Debian's ``docker-registry`` (CNCF distribution 2.8).

Each fixture writes a config (storage in a temp directory, ``http.addr`` a free loopback port, deletes
enabled), starts the binary, waits for ``/v2/`` and stops it at the end of the session. Variants:

* ``registry``: anonymous access;
* ``basic_registry``: htpasswd basic auth (bcrypt file written by ``htpasswd -B``);
* ``token_registry``: the bearer token flow, with the realm served by :class:`TokenServer` on another
  loopback port; it issues ES256 JWTs signed by a throwaway key whose self-signed certificate is the
  registry's ``rootcertbundle`` (distribution's ``docs/spec/auth/jwt.md``).

``FaultProxy`` sits between a client and a registry to drop connections, answer 500, or rewrite bodies.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import http.server
import json
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from bastion.oci import (
    MEDIA_TYPE_LAYER_GZIP,
    Descriptor,
    Layer,
    Platform,
    RuntimeConfig,
    Store,
    put_image,
    put_index,
)

USER = "alice"
PASSWORD = "correct horse battery staple"
TOKEN_SERVICE = "bastion-test-registry"
TOKEN_ISSUER = "bastion-test-token-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryProcess:
    host: str  # 127.0.0.1:PORT
    root: Path  # storage root directory
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def blob_data_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob's bytes."""
        hexdigest = digest.removeprefix("sha256:")
        return self.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def _start(
    tmp: Path, auth: dict[str, object] | None, tls: dict[str, str] | None = None
) -> Iterator[RegistryProcess]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (scripts/test installs it)")
    port = free_port()
    root = tmp / "storage"
    root.mkdir()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth:
        config["auth"] = auth
    if tls:
        config["http"]["tls"] = tls  # type: ignore[index]
    config_path = tmp / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    log = tmp / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "serve", str(config_path)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/", timeout=1, verify=False)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"docker-registry did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
        yield RegistryProcess(f"127.0.0.1:{port}", root, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from _start(tmp_path_factory.mktemp("registry"), None)


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is not installed (apache2-utils; scripts/test installs it)")
    tmp = tmp_path_factory.mktemp("basic-registry")
    htpasswd = tmp / "htpasswd"
    subprocess.run(
        ["htpasswd", "-B", "-b", "-c", str(htpasswd), USER, PASSWORD], check=True, capture_output=True
    )
    yield from _start(tmp, {"htpasswd": {"realm": "bastion-test", "path": str(htpasswd)}})


@dataclass(frozen=True)
class TlsRegistry:
    process: RegistryProcess
    ca_file: Path


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRegistry]:
    """docker-registry behind TLS with a certificate for 127.0.0.1 issued by a throwaway test CA."""
    import ipaddress

    tmp = tmp_path_factory.mktemp("tls-registry")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for process in _start(tmp, None, {"certificate": str(cert_file), "key": str(key_file)}):
        yield TlsRegistry(process, ca_file)


# -- the token server -----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """Issues registry tokens (distribution ``docs/spec/auth/token.md`` and ``jwt.md``) to USER only."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    url: str = ""
    requests: list[dict[str, list[str]]] = field(default_factory=list)

    def issue(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        # JWS (RFC 7518 section 3.4): an ES256 signature is R and S, 32 bytes each, not DER.
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _token_handler(server: TokenServer) -> type[http.server.BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            server.requests.append(query)
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps(
                {"token": server.issue(USER, query.get("scope", [])), "expires_in": 300}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def token_server() -> Iterator[TokenServer]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    state = TokenServer(key, cert)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _token_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/token"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer
) -> Iterator[RegistryProcess]:
    tmp = tmp_path_factory.mktemp("token-registry")
    bundle = tmp / "token-signer.pem"
    bundle.write_bytes(token_server.certificate.public_bytes(serialization.Encoding.PEM))
    auth = {
        "token": {
            "realm": token_server.url,
            "service": TOKEN_SERVICE,
            "issuer": TOKEN_ISSUER,
            "rootcertbundle": str(bundle),
        }
    }
    yield from _start(tmp, auth)


# -- a fault-injecting proxy ----------------------------------------------------------------------------

# (method, path) -> "drop" to close the connection, an int status to answer with, or None to forward.
Fault = Callable[[str, str], "str | int | None"]
Tamper = Callable[[str, str, bytes], bytes]


@dataclass
class FaultProxy:
    """Forwards to ``upstream`` (host:port), applying ``faults`` to requests and ``tamper`` to bodies."""

    upstream: str
    url: str = ""
    host: str = ""
    faults: list[Fault] = field(default_factory=list)
    tamper: Tamper | None = None
    seen: list[tuple[str, str, int]] = field(default_factory=list)


def _proxy_handler(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            for fault in proxy.faults:
                action = fault(self.command, self.path)
                if action == "drop":
                    proxy.seen.append((self.command, self.path, 0))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(action, int):
                    proxy.seen.append((self.command, self.path, action))
                    self.send_response(action)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")
            }
            conn.request(self.command, self.path, body=body if length else None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if proxy.tamper is not None and self.command == "GET":
                data = proxy.tamper(self.command, self.path, data)
            proxy.seen.append((self.command, self.path, response.status))
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def fault_proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.host)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(proxy))
    proxy.host = f"127.0.0.1:{httpd.server_address[1]}"
    proxy.url = f"http://{proxy.host}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- small images made without the mirror ---------------------------------------------------------------


class Recorder(httpx.BaseTransport):
    """An httpx transport that records (method, path) of every request it sends."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.raw_path.decode()))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def make_image(
    store: Store, *, layer_sizes: tuple[int, ...] = (3000, 200_000), seed: str = "x"
) -> Descriptor:
    """A two-platform image with incompressible layers of the given sizes, stored in ``store``."""
    manifests = []
    for arch in ("amd64", "arm64"):
        layers = []
        for n, size in enumerate(layer_sizes):
            data = _random_bytes(f"{seed}-{arch}-{n}", size)
            desc = store.put_blob(data, MEDIA_TYPE_LAYER_GZIP)
            layers.append(Layer(desc, "sha256:" + hashlib.sha256(data).hexdigest()))
        platform = Platform("linux", arch)
        manifests.append(
            put_image(
                store,
                platform=platform,
                layers=layers,
                runtime=RuntimeConfig(user="65532"),
                source_date_epoch=0,
            )
        )
    return put_index(store, manifests)


def _random_bytes(seed: str, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])
