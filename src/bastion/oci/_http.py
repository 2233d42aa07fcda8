"""The HTTP layer of the registry client: authentication, bounded retries, and error mapping.

Every request body is ``bytes`` so that a request can be sent again after a ``401`` or a retryable
failure; large blobs are uploaded in chunks, each its own request (see ``_registry.py``).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from bastion.errors import InputError, IntegrityError, NetworkError
from bastion.oci._auth import AuthenticationError, Authenticator

# The statuses a client may retry (RFC 9110 section 15.6: server errors; RFC 6585: 429).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_DELAY = 10.0
_MAX_ERROR_BODY = 64 * 1024


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
    if value.strip().isdigit():
        return float(value.strip())
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # RFC 9110 section 10.2.3: an unparseable Retry-After is ignored
    return max(parsed.timestamp() - time.time(), 0.0)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Http:
    """Sends requests to one registry with its credentials and retry policy."""

    def __init__(
        self, registry: str, base_url: str, client: httpx.Client, auth: Authenticator, retry: RetryPolicy
    ) -> None:
        self.registry = registry
        self.base_url = httpx.URL(base_url)
        self.client = client
        self.auth = auth
        self.retry = retry

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
    ) -> Iterator[httpx.Response]:
        """Send a request and yield the (streaming) response; the body is closed on leaving."""
        response = self._send(method, url, scope, headers, params, content, retry, authenticate)
        try:
            yield response
        except httpx.TransportError as exc:
            raise NetworkError(f"{method} {_show(response.request.url)}: connection failed: {exc}") from None
        finally:
            response.close()

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
                if retry and attempt < self.retry.attempts:
                    time.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise NetworkError(f"{method} {_show(target)}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 401 and authenticate and own_host and answered is None:
                response.read()
                response.close()
                answered = self.auth.answer(response, scope, self._get_token)
                continue
            if response.status_code in RETRYABLE_STATUSES and retry and attempt < self.retry.attempts:
                response.close()
                time.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            return response

    def _get_token(self, realm: str, params: list[tuple[str, str]], basic: str | None) -> httpx.Response:
        url = httpx.URL(realm).copy_merge_params(params)  # type: ignore[arg-type]
        headers = {"Authorization": basic} if basic else {}
        with self.open("GET", url, headers=headers, authenticate=False) as response:
            response.read()
            return response


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
            except httpx.TransportError as exc:
                raise NetworkError(f"{self._what}: connection failed while reading: {exc}") from None
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
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise InputError(f"{what} is {declared} bytes, more than the limit of {limit}")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise InputError(f"{what} is more than the limit of {limit} bytes")
            chunks.append(chunk)
    except httpx.TransportError as exc:
        raise NetworkError(f"{what}: connection failed while reading: {exc}") from None
    return b"".join(chunks)


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
        doc = json.loads(body)
    except (InputError, NetworkError, ValueError, httpx.StreamError):
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
