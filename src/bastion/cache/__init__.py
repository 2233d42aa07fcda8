"""Content-addressed cache of verified downloads, and the downloader that fills it."""

from bastion.cache._cache import Cache
from bastion.cache._fetch import Download, Fetcher

__all__ = ["Cache", "Download", "Fetcher"]
