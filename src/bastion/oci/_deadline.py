"""A total deadline for each registry request, enforced on every socket operation.

httpx's timeouts bound each read and write on its own: a peer that sends one byte a second (a manifest
dripped out, or headers that never end) never trips them and keeps a command running for as long as it
likes. Here each request runs under a deadline (:func:`deadline`, kept per thread, since a request is
sent and its body read in one thread); the connection pool's network streams shorten every connect,
read and write to the time left and fail with a timeout once it is gone, whatever phase the request is
in. :class:`DeadlineTransport` is httpx's own transport over such a pool.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator

import httpcore
import httpx

__all__ = ["DeadlineTransport", "deadline", "expired", "remaining"]

_state = threading.local()


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Run the block under a deadline (a ``time.monotonic()`` value); nested deadlines only shorten."""
    previous: float | None = getattr(_state, "at", None)
    _state.at = at if previous is None else min(at, previous)
    try:
        yield
    finally:
        _state.at = previous


def expired() -> bool:
    """Whether this thread's current deadline has passed."""
    at: float | None = getattr(_state, "at", None)
    return at is not None and time.monotonic() >= at


def remaining() -> float | None:
    """Seconds left before this thread's current deadline (``None`` when there is none)."""
    at: float | None = getattr(_state, "at", None)
    return None if at is None else at - time.monotonic()


def _bounded(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    at: float | None = getattr(_state, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _Stream(super().connect_tcp(host, port, bounded, local_address, socket_options))


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """httpcore's errors as the httpx errors of the same name (as httpx's own transport maps them)."""
    try:
        yield
    except (
        httpcore.TimeoutException,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.ProxyError,
        httpcore.UnsupportedProtocol,
    ) as exc:
        mapped = getattr(httpx, type(exc).__name__, httpx.TransportError)
        raise mapped(str(exc)) from exc


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _mapped():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class DeadlineTransport(httpx.BaseTransport):
    """httpx's HTTP/1.1 transport whose connections honour :func:`deadline`."""

    def __init__(self, verify: ssl.SSLContext | bool) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify), network_backend=_Backend()
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            response = self._pool.handle_request(core)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
