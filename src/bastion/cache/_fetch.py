"""Downloads from package mirrors into the verified cache.

Each download is checked against the SHA256 and size that signed metadata gave for it before it
enters the cache (see :mod:`bastion.cache._cache`); a file already in the cache is not fetched again,
so a warm cache needs no network.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion import __version__
from bastion._progress import Progress, Silent
from bastion.cache._cache import Cache, Validator
from bastion.errors import BastionError, NetworkError

if TYPE_CHECKING:
    import httpx

_CHUNK = 1 << 16
_RETRIES = 3


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str
    size: int
    label: str  # what to call it in messages, e.g. "python3.11_3.11.2-6+deb12u9_amd64.deb"
    validate: Validator | None = None  # a structural check before the file enters the cache


class Fetcher:
    """Downloads into ``cache``, ``workers`` at a time. ``on_fetched`` (settable) is called, in the
    downloading thread, with the cache path and SHA256 of each file this fetcher put into the cache
    (not of those it found there): a build unpacks each package while the others still download."""

    def __init__(
        self,
        cache: Cache,
        *,
        progress: Progress | None = None,
        workers: int = 8,
        timeout: float = 60.0,
        on_fetched: Callable[[Path, str], None] | None = None,
    ):
        self.cache = cache
        self.on_fetched = on_fetched
        self.progress = progress or Silent()
        self.workers = workers
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _http(self) -> httpx.Client:
        """The HTTP client, made on first use: a warm cache needs none, and making one costs
        a tenth of a second (imports, TLS context)."""
        import httpx

        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self._timeout,
                    follow_redirects=True,
                    headers={"User-Agent": f"bastion/{__version__}"},
                    limits=httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers),
                )
            return self._client

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str) -> bytes:
        """Fetch a small document whole (InRelease). The caller verifies it."""
        if url.startswith("file:"):
            return _file_path(url).read_bytes()
        response = self._request(url)
        return response.content

    def fetch(self, item: Download, task: int | None = None) -> Path:
        """Download one file into the cache, verifying digest and size; return its cache path."""
        cached = self.cache.lookup(item.sha256, item.size)
        if cached is not None:
            if task is not None:
                self.progress.advance(task, item.size)
            return cached
        path = self._download(item, task)
        if self.on_fetched is not None:
            self.on_fetched(path, item.sha256)
        return path

    def _download(self, item: Download, task: int | None) -> Path:
        if item.url.startswith("file:"):
            data = _file_path(item.url).read_bytes()
            path = self.cache.put_bytes(data, item.sha256, where=item.label, validate=item.validate)
            if task is not None:
                self.progress.advance(task, item.size)
            return path
        import httpx

        client = self._http()
        for attempt in range(_RETRIES):
            advanced = 0
            try:
                with (
                    client.stream("GET", item.url) as response,
                    self.cache.writer(
                        item.sha256, item.size, where=item.label, validate=item.validate
                    ) as out,
                ):
                    _check_status(response, item.url)
                    for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)
                        # A peer that sends more than the signed size is cut off, not buffered.
                        if out.size > item.size:
                            break
                        if task is not None:
                            self.progress.advance(task, len(chunk))
                            advanced += len(chunk)
                return self.cache.path_for(item.sha256)
            except httpx.TransportError as exc:
                if task is not None and advanced:
                    self.progress.advance(task, -advanced)
                if attempt == _RETRIES - 1:
                    raise NetworkError(f"cannot download {item.url}: {exc}", where=item.label) from None
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def fetch_all(self, items: Sequence[Download], description: str = "Fetching packages") -> list[Path]:
        """Download many files in parallel with one progress bar; fail on the first bad one."""
        task = self.progress.task(description, total=sum(i.size for i in items))
        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                futures = [pool.submit(self.fetch, item, task) for item in items]
                results: list[Path] = []
                first_error: BaseException | None = None
                for future in futures:
                    try:
                        results.append(future.result())
                    except BastionError as exc:
                        first_error = first_error or exc
                if first_error is not None:
                    raise first_error
                return results
        finally:
            self.progress.finish(task)

    def _request(self, url: str) -> httpx.Response:
        import httpx

        client = self._http()
        for attempt in range(_RETRIES):
            try:
                response = client.get(url)
            except httpx.TransportError as exc:
                if attempt == _RETRIES - 1:
                    raise NetworkError(f"cannot reach {url}: {exc}") from None
                time.sleep(0.5 * 2**attempt)
                continue
            _check_status(response, url)
            return response
        raise AssertionError("unreachable")


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code == 404:
        raise NetworkError(f"{url} not found (HTTP 404)")
    if response.status_code >= 400:
        raise NetworkError(f"{url}: HTTP {response.status_code}")


def _file_path(url: str) -> Path:
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
