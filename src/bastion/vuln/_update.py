"""``bastion db update``: download the feeds and import them, fetching only what changed.

Feeds and settings come from a TOML file, ``$BASTION_VULN_CONFIG`` or else ``BASTION_HOME/vuln.toml``
(both optional)::

    max-age-hours = 24          # `bastion cves` warns when the newest import is older than this

    [[feed]]                    # any [[feed]] replaces the whole default list
    url = "https://example.org/osv/PyPI/all.zip"

``BASTION_VULN_MAX_AGE_HOURS`` overrides ``max-age-hours``. Each feed is any format ``db import``
reads (recognised by content). Requests are conditional (RFC 9110 §13.1: ``If-None-Match`` with the
stored ``ETag``, ``If-Modified-Since`` with the stored ``Last-Modified``); a ``304`` leaves that feed
as it is. Feeds must be HTTPS; plain HTTP is accepted only on the loopback interface (local mirrors,
tests). Everything downloaded is imported in one transaction, and the validators are stored in the
same transaction, so a failed import is retried in full next time.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bastion.errors import InputError, NetworkError
from bastion.vuln._read import VulnDatabase

if TYPE_CHECKING:
    from bastion.vuln._db import SqlVulnDatabase
    from bastion.vuln._import import ImportReport

__all__ = [
    "DEFAULT_FEEDS",
    "FeedResult",
    "UpdateResult",
    "VulnConfig",
    "load_config",
    "stale_sources",
    "update",
]

_OSV = "https://osv-vulnerabilities.storage.googleapis.com"
#: OSV's per-ecosystem archives, the Debian security tracker's JSON feed, and CISA's KEV catalogue.
DEFAULT_FEEDS = (
    f"{_OSV}/Debian:12/all.zip",
    f"{_OSV}/PyPI/all.zip",
    f"{_OSV}/npm/all.zip",
    f"{_OSV}/Go/all.zip",
    f"{_OSV}/Maven/all.zip",
    f"{_OSV}/crates.io/all.zip",
    "https://security-tracker.debian.org/tracker/data/json",
    "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
)
DEFAULT_MAX_AGE_HOURS = 24.0
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class VulnConfig:
    feeds: tuple[str, ...] = DEFAULT_FEEDS
    max_age_hours: float = DEFAULT_MAX_AGE_HOURS


@dataclass
class FeedResult:
    url: str
    status: str  # downloaded | unchanged
    size: int = 0


@dataclass
class UpdateResult:
    feeds: list[FeedResult] = field(default_factory=list)
    report: ImportReport | None = None


def load_config(home: Path) -> VulnConfig:
    path = Path(os.environ.get("BASTION_VULN_CONFIG") or home / "vuln.toml")
    config = VulnConfig()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InputError(
                f"cannot read the vulnerability configuration: {error}", where=str(path)
            ) from None
        feeds = data.get("feed")
        if feeds is not None:
            if not isinstance(feeds, list) or not all(
                isinstance(f, dict) and isinstance(f.get("url"), str) for f in feeds
            ):
                raise InputError("[[feed]] entries need a url string", where=str(path))
            config = VulnConfig(tuple(f["url"] for f in feeds), config.max_age_hours)
        age = data.get("max-age-hours", config.max_age_hours)
        if not isinstance(age, int | float) or age <= 0:
            raise InputError("max-age-hours must be a positive number", where=str(path))
        config = VulnConfig(config.feeds, float(age))
    override = os.environ.get("BASTION_VULN_MAX_AGE_HOURS")
    if override:
        try:
            config = VulnConfig(config.feeds, float(override))
        except ValueError:
            raise InputError(f"BASTION_VULN_MAX_AGE_HOURS={override!r} is not a number") from None
    for url in config.feeds:
        _check_url(url)
    return config


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return
    raise InputError(f"feed {url!r} is not HTTPS (plain HTTP is allowed only on loopback)")


def update(
    database: SqlVulnDatabase, config: VulnConfig, work: Path, *, timeout: float = 120.0
) -> UpdateResult:
    """Download every feed that changed into ``work`` and import them together."""
    import httpx

    from bastion.vuln._import import import_paths

    result = UpdateResult()
    work.mkdir(parents=True, exist_ok=True)
    downloaded: list[Path] = []
    validators: list[tuple[str, str | None, str | None]] = []
    with (
        tempfile.TemporaryDirectory(dir=work) as scratch,
        httpx.Client(timeout=timeout, follow_redirects=True) as client,
    ):
        for index, url in enumerate(config.feeds):
            etag, modified = database.feed(url)
            headers = {}
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
            target = Path(scratch) / f"feed-{index}"
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.status_code == 304:
                        result.feeds.append(FeedResult(url, "unchanged"))
                        continue
                    if response.status_code != 200:
                        raise NetworkError(f"HTTP {response.status_code}", where=url)
                    # A redirect must not downgrade to plain HTTP off loopback.
                    _check_url(str(response.url))
                    size = 0
                    with target.open("wb") as out:
                        for chunk in response.iter_bytes(1 << 20):
                            out.write(chunk)
                            size += len(chunk)
                    validators.append(
                        (url, response.headers.get("etag"), response.headers.get("last-modified"))
                    )
            except httpx.HTTPError as error:
                raise NetworkError(f"download failed: {error}", where=url) from None
            downloaded.append(target)
            result.feeds.append(FeedResult(url, "downloaded", size))
        if downloaded:
            labels = {path: url for path, url in zip(downloaded, [v[0] for v in validators], strict=True)}
            result.report = import_paths(database, downloaded, feeds=validators, labels=labels)
    return result


def stale_sources(database: VulnDatabase, max_age_hours: float, now: float | None = None) -> list[str]:
    """Warnings for sources imported longer than ``max_age_hours`` ago."""
    import time
    from datetime import datetime

    current = time.time() if now is None else now
    warnings = []
    for source in database.sources():
        imported = datetime.fromisoformat(source.imported_at.replace("Z", "+00:00")).timestamp()
        age = (current - imported) / 3600
        if age > max_age_hours:
            warnings.append(
                f"vulnerability data from {source.name} is {age:.0f} hours old (more than {max_age_hours:g}): "
                "run `bastion db update`"
            )
    return warnings
