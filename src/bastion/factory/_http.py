"""Bounded HTTP for trackers: every answer from upstream is hostile until checked.

Each request has a total deadline (connect, headers and body), a size limit enforced while the
body streams, at most :data:`MAX_REDIRECTS` redirects, and conditional-request validators
(RFC 9110 13.1: ``If-None-Match`` from an ETag, ``If-Modified-Since`` from Last-Modified).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bastion import __version__
from bastion.errors import NetworkError

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_BODY", "MAX_REDIRECTS", "Answer", "Http"]

MAX_BODY = 1024 * 1024
MAX_REDIRECTS = 5
DEADLINE_SECONDS = 20.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]
    validators: Mapping[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Http:
    """One client shared by every tracker of a poll; counts the requests it makes."""

    def __init__(self, *, deadline: float = DEADLINE_SECONDS, max_body: int = MAX_BODY) -> None:
        self.deadline = deadline
        self.max_body = max_body
        self.requests = 0
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                timeout=self.deadline,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                trust_env=False,
                headers={"User-Agent": f"bastion/{__version__}"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def get(
        self,
        url: str,
        *,
        validators: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        max_body: int | None = None,
    ) -> Answer:
        """GET ``url``; a 304 comes back as an :class:`Answer` with an empty body. Raises
        :class:`NetworkError` (one line naming the URL) for transport failures, redirect loops, a
        body over the limit or the deadline passed; the status is the caller's to judge."""
        import httpx

        limit = max_body or self.max_body
        sent = dict(headers or {})
        if validators and validators.get("etag"):
            sent["If-None-Match"] = validators["etag"]
        if validators and validators.get("last-modified"):
            sent["If-Modified-Since"] = validators["last-modified"]
        started = time.monotonic()
        self.requests += 1
        try:
            with self._http().stream("GET", url, headers=sent) as response:
                self.requests += len(response.history)
                body = bytearray()
                if response.status_code != 304:
                    # Each network read, not each 64 KiB: a peer dripping bytes meets the deadline.
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise NetworkError(f"{url}: the answer is larger than {limit:,} bytes")
                        if time.monotonic() - started > self.deadline:
                            raise NetworkError(f"{url}: no complete answer within {self.deadline:g} s")
                answer_headers = {key.lower(): value for key, value in response.headers.items()}
        except httpx.TooManyRedirects:
            raise NetworkError(f"{url}: more than {MAX_REDIRECTS} redirects (a redirect loop?)") from None
        except httpx.TimeoutException:
            raise NetworkError(f"{url}: no answer within {self.deadline:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            raise NetworkError(f"{url}: {type(err).__name__}: {err}".splitlines()[0]) from None
        kept: dict[str, str] = {
            name: answer_headers[name] for name in ("etag", "last-modified") if name in answer_headers
        }
        if response.status_code == 304 and validators:
            kept = {**validators, **kept}
        return Answer(response.status_code, bytes(body), answer_headers, kept)
