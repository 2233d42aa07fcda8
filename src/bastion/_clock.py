"""The time, as every package writes it: UTC, whole seconds, RFC 3339 with ``Z`` (RFC 3339 section 5.6;
the form in-toto, SLSA, OpenVEX and OCI ``created`` fields use)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now", "rfc3339"]


def now() -> datetime:
    """The current time in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime | int | None = None) -> str:
    """``moment`` (an aware datetime, or seconds since the epoch such as ``SOURCE_DATE_EPOCH``; the
    current time when None) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    if moment is None:
        moment = now()
    elif isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
