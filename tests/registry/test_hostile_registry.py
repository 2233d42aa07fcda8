"""A hostile registry cannot hang Bastion, exhaust its memory or reach an
internal error. Each attack runs through the ``bastion`` command against a loopback server
(:mod:`tests.registry.hostile`) and must end in a one-line refusal (exit 2) naming the server, soon."""

from __future__ import annotations

import http.server
import time
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_cli
from tests.registry.hostile import (
    CONFIG,
    INDEX,
    MANIFEST,
    HostileRegistry,
    digest_of,
    document,
    hostile_registry,
    index_of,
    send,
    stream,
)

QUICK = 15.0  # seconds: every refusal here comes well within this; the attacks last STOP_AFTER (20 s)
COMMANDS = (["pull"], ["sbom"], ["attest", "list"])


def _run(args: list[str], home: Path, **env: str) -> tuple[CliResult, float]:
    started = time.monotonic()
    result = run_cli(*args, home=home, env=env)
    return result, time.monotonic() - started


def _refused(result: CliResult, elapsed: float, *words: str) -> None:
    assert result.code == 2, (result.code, result.stderr)
    assert "internal error" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert elapsed < QUICK, elapsed


def _leaf_manifest(registry: HostileRegistry, note: str = "") -> tuple[str, str, int]:
    """An image manifest whose config the registry does not have (so any pull of it fails, late)."""
    config = document({"architecture": "amd64", "os": "linux", "note": note})
    manifest = document({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [],
    })  # fmt: skip
    return MANIFEST, registry.add(MANIFEST, manifest), len(manifest)


def test_endless_401_and_token_bodies_are_not_read_whole(tmp_path: Path) -> None:
    """A 401 whose body never ends, then a token service whose answer never ends."""
    registry = HostileRegistry()

    def attack(handler: http.server.BaseHTTPRequestHandler) -> bool:
        handler.send_response(200 if handler.path.startswith("/token") else 401)
        if not handler.path.startswith("/token"):
            realm = f"http://{registry.host}/token"
            handler.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="hostile"')
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        stream(handler, b"x" * 65536, 0.01)
        return True

    registry.attack = attack
    with hostile_registry(registry):
        result, elapsed = _run(["pull", f"{registry.host}/repo:latest"], tmp_path)
    _refused(result, elapsed, "token", "limit", registry.host)


def test_a_400_digit_expires_in_is_clamped(tmp_path: Path) -> None:
    registry = HostileRegistry()

    def attack(handler: http.server.BaseHTTPRequestHandler) -> bool:
        if handler.path.startswith("/token"):
            send(handler, 200, b'{"token":"t","expires_in":' + b"9" * 400 + b"}")
            return True
        if handler.headers.get("Authorization") != "Bearer t":
            realm = f"http://{registry.host}/token"
            send(handler, 401, b"", WWW_Authenticate=f'Bearer realm="{realm}",service="hostile"')
            return True
        return False

    registry.attack = attack
    with hostile_registry(registry):
        result, elapsed = _run(["pull", f"{registry.host}/repo:latest"], tmp_path)
    _refused(result, elapsed, "not found", registry.host)


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_dripped_answer_meets_the_request_deadline(tmp_path: Path, phase: str) -> None:
    """One byte every 0.1 s never trips a per-read timeout; the request's total deadline ends it."""
    registry = HostileRegistry()

    def attack(handler: http.server.BaseHTTPRequestHandler) -> bool:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: " + MANIFEST.encode() + b"\r\nContent-Length: 100000\r\n\r\n"
        )
        drip = head + b"{" * 100000 if phase == "headers" else b"{" * 100000
        if phase == "body":
            handler.wfile.write(head)
        ends = time.monotonic() + 20
        try:
            for byte in drip:
                if time.monotonic() > ends:
                    break
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        return True

    registry.attack = lambda h: h.path.endswith("/manifests/latest") and attack(h)
    with hostile_registry(registry):
        result, elapsed = _run(
            ["pull", f"{registry.host}/repo:latest"], tmp_path, BASTION_REGISTRY_TIMEOUT="2"
        )
    _refused(result, elapsed, "deadline", "BASTION_REGISTRY_TIMEOUT", registry.host)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_index_fan_out_reads_each_document_once(tmp_path: Path, command: list[str]) -> None:
    """4 levels of indexes, each listing the same child 200 times: 1.6 billion paths, 5 documents."""
    registry = HostileRegistry()
    child = _leaf_manifest(registry)
    for _level in range(4):
        data = index_of([child] * 200)
        child = (INDEX, registry.add(INDEX, data), len(data))
    registry.add(INDEX, data, "latest")
    with hostile_registry(registry):
        result, elapsed = _run([*command, f"{registry.host}/repo:latest"], tmp_path)
    _refused(result, elapsed, "not found", registry.host)
    manifest_reads = [r for r in registry.requests if "/manifests/" in r]
    assert len(manifest_reads) < 40, manifest_reads


@pytest.mark.parametrize("command", [["pull"], ["attest", "list"]], ids=" ".join)
def test_an_index_of_too_many_documents_is_refused(tmp_path: Path, command: list[str]) -> None:
    registry = HostileRegistry()
    data = index_of([_leaf_manifest(registry, str(n)) for n in range(300)])
    registry.add(INDEX, data, "latest")
    with hostile_registry(registry):
        result, elapsed = _run(
            [*command, f"{registry.host}/repo:latest"], tmp_path, BASTION_MAX_DOCUMENTS="50"
        )
    _refused(result, elapsed, "more than 50 manifests and indexes", "BASTION_MAX_DOCUMENTS", registry.host)
    assert len(registry.requests) < 60


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_1200_level_index_chain_is_refused(tmp_path: Path, command: list[str]) -> None:
    registry = HostileRegistry()
    child = _leaf_manifest(registry)
    for _level in range(1200):
        data = index_of([child])
        child = (INDEX, registry.add(INDEX, data), len(data))
    registry.add(INDEX, data, "latest")
    with hostile_registry(registry):
        result, elapsed = _run([*command, f"{registry.host}/repo:latest"], tmp_path)
    _refused(result, elapsed, "nests more than 4 levels")


def test_a_redirect_loop_is_refused_naming_the_server(tmp_path: Path) -> None:
    registry = HostileRegistry()

    def attack(handler: http.server.BaseHTTPRequestHandler) -> bool:
        if "/manifests/" not in handler.path:
            return False
        # Connection: close, as the server hangs up after an attack: else the client may send the next
        # request down a connection the server is closing ("Server disconnected", not the loop).
        send(handler, 302, b"", Location=handler.path, Connection="close")
        return True

    registry.attack = attack
    with hostile_registry(registry):
        result, elapsed = _run(["pull", f"{registry.host}/repo:latest"], tmp_path)
    _refused(result, elapsed, "redirects in a loop", registry.host)


def test_a_body_that_does_not_decode_is_refused_naming_the_server(tmp_path: Path) -> None:
    registry = HostileRegistry()

    def attack(handler: http.server.BaseHTTPRequestHandler) -> bool:
        if "/manifests/" not in handler.path:
            return False
        send(
            handler,
            200,
            b"this is not gzip",
            Content_Type=MANIFEST,
            Content_Encoding="gzip",
            Connection="close",
        )
        return True

    registry.attack = attack
    with hostile_registry(registry):
        result, elapsed = _run(["pull", f"{registry.host}/repo:latest"], tmp_path)
    _refused(result, elapsed, "Content-Encoding", registry.host)


def test_a_malformed_time_limit_is_refused(tmp_path: Path) -> None:
    result, elapsed = _run(["pull", "127.0.0.1:9/repo:latest"], tmp_path, BASTION_REGISTRY_TIMEOUT="soon")
    _refused(result, elapsed, "BASTION_REGISTRY_TIMEOUT='soon' is not a positive number")
