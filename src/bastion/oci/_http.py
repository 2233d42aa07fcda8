"""The HTTP layer of the registry client: authentication, bounded retries, and error mapping.

Every request body is ``bytes`` so that a request can be sent again after a ``401`` or a retryable
failure; large blobs are uploaded in chunks, each its own request (see ``_registry.py``).

Bounds (a registry is untrusted): every body read into memory is read through :func:`read_limited`;
each request, retries and body included, runs under a total deadline (:mod:`bastion.oci._deadline`,
``BASTION_REGISTRY_TIMEOUT``), itself inside the client's deadline for all its requests
(``BASTION_REGISTRY_DEADLINE``); and every failure of the peer (a dropped connection, a deadline, a
redirect loop, a body its ``Content-Encoding`` does not decode) is a one-line error naming the server.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from bastion.documents import load_json
from bastion.errors import BastionError, InputError, IntegrityError, NetworkError
from bastion.oci._auth import MAX_TOKEN_RESPONSE, AuthenticationError, Authenticator
from bastion.oci._deadline import deadline, expired, remaining
from bastion.oci._limits import ENV_REGISTRY_DEADLINE, ENV_REGISTRY_TIMEOUT, RegistryLimits

# The statuses a client may retry (RFC 9110 section 15.6: server errors; RFC 6585: 429).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_DELAY = 10.0
_MAX_ERROR_BODY = 64 * 1024
_BLOB_ALLOWANCE = 1024 * 1024  # bytes of a blob's stated size that add one second to its deadline


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` extra tries after the first, waiting ``backoff * 2**n`` seconds (capped) between."""

    attempts: int = 4
    backoff: float = 0.5

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        if response is not None and (after := _retry_after(response.headers.get("retry-after"))) is not None:
            return min(after, _MAX_DELAY)
        # Full jitter keeps concurrent clients from retrying in lock step.
        return min(self.backoff * (2.0**attempt), _MAX_DELAY) * (0.5 + random.random() / 2)  # noqa: S311


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isascii() and value.strip().isdigit():
        return float(value.strip())
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # RFC 9110 section 10.2.3: an unparseable Retry-After is ignored
    return max(parsed.timestamp() - time.time(), 0.0)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Http:
    """Sends requests to one registry with its credentials, retry policy and time limits."""

    def __init__(
        self,
        registry: str,
        base_url: str,
        client: httpx.Client,
        auth: Authenticator,
        retry: RetryPolicy,
        limits: RegistryLimits | None = None,
    ) -> None:
        self.registry = registry
        self.base_url = httpx.URL(base_url)
        self.client = client
        self.auth = auth
        self.retry = retry
        self.limits = limits if limits is not None else RegistryLimits()
        self._operation_ends = time.monotonic() + self.limits.operation

    @contextlib.contextmanager
    def open(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        scope: str = "",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        retry: bool = True,
        authenticate: bool = True,
        size: int | None = None,
    ) -> Iterator[httpx.Response]:
        """Send a request and yield the (streaming) response; the body is closed on leaving.

        The request and the reading of its body must end within the request deadline (longer by one
        second per MiB of ``size``, the body's expected size) and the client's operation deadline."""
        if time.monotonic() >= self._operation_ends:
            raise self._operation_over(method, url)
        allowance = min(size or 0, 2**60) / _BLOB_ALLOWANCE
        ends = min(time.monotonic() + self.limits.request + allowance, self._operation_ends)
        with deadline(ends):
            response = self._send(method, url, scope, headers, params, content, retry, authenticate)
            try:
                yield response
            except httpx.RequestError as exc:
                raise peer_failure(f"{method} {_show(response.request.url)}", exc) from None
            finally:
                response.close()

    def _operation_over(self, method: str, url: httpx.URL | str) -> NetworkError:
        return NetworkError(
            f"{method} {url}: the requests to {self.registry} took more than {self.limits.operation:g} s",
            hint=f"{ENV_REGISTRY_DEADLINE} raises the limit",
        )

    def _send(
        self,
        method: str,
        url: httpx.URL | str,
        scope: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        content: bytes | None,
        retry: bool,
        authenticate: bool,
    ) -> httpx.Response:
        target = self.base_url.join(url) if isinstance(url, str) else url
        if params:
            target = target.copy_merge_params(dict(params))
        # Credentials go only to the registry itself, never to another host named in a Location.
        own_host = (target.host, target.port) == (self.base_url.host, self.base_url.port)
        answered: str | None = None
        attempt = 0
        while True:
            sent = dict(headers or {})
            if authenticate and own_host:
                auth_header = answered or self.auth.header(scope)
                if auth_header:
                    sent["Authorization"] = auth_header
            request = self.client.build_request(method, target, headers=sent, content=content)
            try:
                response = self.client.send(request, stream=True)
            except httpx.TransportError as exc:
                if retry and attempt < self.retry.attempts and not expired():
                    self._sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise peer_failure(f"{method} {_show(target)}", exc) from None
            except httpx.RequestError as exc:  # TooManyRedirects, a redirect to an unsupported URL
                raise peer_failure(f"{method} {_show(target)}", exc) from None
            if response.status_code == 401 and authenticate and own_host and answered is None:
                # The challenge is in the headers; the body is not read (a hostile one may not end).
                response.close()
                answered = self.auth.answer(response, scope, self._get_token)
                continue
            if (
                response.status_code in RETRYABLE_STATUSES
                and retry
                and attempt < self.retry.attempts
                and not expired()
            ):
                response.close()
                self._sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            return response

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry, but never past the request's deadline (then the retry fails at once)."""
        left = remaining()
        time.sleep(max(min(seconds, seconds if left is None else left), 0.0))

    def _get_token(self, realm: str, params: list[tuple[str, str]], basic: str | None) -> tuple[int, bytes]:
        url = httpx.URL(realm).copy_merge_params(params)  # type: ignore[arg-type]
        headers = {"Authorization": basic} if basic else {}
        with self.open("GET", url, headers=headers, authenticate=False) as response:
            if response.status_code != 200:
                return response.status_code, b""
            return 200, read_limited(response, MAX_TOKEN_RESPONSE, f"token from {_show(url)}")


def peer_failure(what: str, exc: httpx.RequestError) -> BastionError:
    """The error a failed exchange with a registry stands for; ``what`` names the request or document
    (with the server)."""
    if isinstance(exc, httpx.TransportError) and expired():
        return NetworkError(
            f"{what}: no complete answer within the request deadline",
            hint=f"{ENV_REGISTRY_TIMEOUT} (seconds) raises it",
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return NetworkError(f"{what}: the registry redirects in a loop ({exc})")
    if isinstance(exc, httpx.DecodingError):
        # RFC 9110 section 8.4: the body must decode as its Content-Encoding says.
        return InputError(f"{what}: the body does not decode as its Content-Encoding says ({exc})")
    if isinstance(exc, httpx.TransportError):
        return NetworkError(f"{what}: connection failed: {type(exc).__name__}: {exc}")
    return NetworkError(f"{what}: the request failed: {type(exc).__name__}: {exc}")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class VerifyingReader:
    """Reads a blob response, hashing as it goes; raises IntegrityError instead of returning the end
    of a blob whose digest or size is wrong, and as soon as more bytes than ``size`` arrive."""

    def __init__(self, chunks: Iterator[bytes], digest: str, size: int | None, what: str) -> None:
        self._chunks = chunks
        self._digest = digest
        self._size = size
        self._what = what
        self._hash = hashlib.sha256()
        self._buffer = b""
        self._eof = False
        self.received = 0

    def read(self, size: int = -1, /) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                self._check_end()
                break
            except httpx.RequestError as exc:
                raise peer_failure(self._what, exc) from None
            self._hash.update(chunk)
            self.received += len(chunk)
            if self._size is not None and self.received > self._size:
                raise IntegrityError(f"{self._what} is longer than its descriptor's {self._size} bytes")
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _check_end(self) -> None:
        # descriptor.md "Digests": content whose digest does not match MUST NOT be consumed.
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self._digest or (self._size is not None and self.received != self._size):
            want = "" if self._size is None else f", {self._size} bytes"
            raise IntegrityError(
                f"{self._what} is {actual} ({self.received} bytes), expected {self._digest}{want}"
            )


def read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    """Read a whole response body, refusing one over ``limit`` bytes (declared or actual)."""
    declared = content_length(response)
    if declared is not None and declared > limit:
        raise InputError(f"{what} is {declared} bytes, more than the limit of {limit}")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise InputError(f"{what} is more than the limit of {limit} bytes")
            chunks.append(chunk)
    except httpx.RequestError as exc:
        raise peer_failure(what, exc) from None
    return b"".join(chunks)


def content_length(response: httpx.Response) -> int | None:
    """The ``Content-Length`` a response declares (RFC 9110 section 8.6: ASCII digits), else ``None``;
    a value of more than 18 digits reads as 10**18, more than anything can be."""
    declared = response.headers.get("content-length", "").strip()
    if not declared or not declared.isascii() or not declared.isdigit():
        return None
    return int(declared) if len(declared) <= 18 else 10**18


def expect(response: httpx.Response, ok: set[int], what: str) -> None:
    """Raise the error that ``response`` stands for unless its status is in ``ok``."""
    status = response.status_code
    if status in ok:
        return
    detail = _error_detail(response)
    if status == 401:
        raise AuthenticationError(f"{what}: the registry refused the credentials{detail}")
    if status == 403:
        raise AuthenticationError(f"{what}: access denied{detail}")
    if status == 404:
        raise InputError(f"{what}: not found{detail}")
    raise NetworkError(f"{what}: the registry answered HTTP {status}{detail}")


def _error_detail(response: httpx.Response) -> str:
    """The codes and messages of a distribution-spec error body (``{"errors":[{code,message}]}``)."""
    try:
        body = read_limited(response, _MAX_ERROR_BODY, "error body")
        doc = load_json(body, where="error body")
    except (BastionError, httpx.StreamError):
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = [
        f"{e.get('code', '?')}: {e.get('message', '')}".strip().rstrip(":")
        for e in errors
        if isinstance(e, dict)
    ]
    return f" ({'; '.join(parts)})" if parts else ""


def _show(url: httpx.URL) -> str:
    """A URL for messages, without its query (upload URLs carry opaque state)."""
    return str(url.copy_with(query=None))
