"""The fix-time policy and the report: every CVE clock item's age against its deadline.

A policy is a small YAML file; each key is optional (the defaults below) and gives the days, from
the moment a fix became available (:mod:`bastion.factory._cveclock`), within which an image without
the vulnerability must be published; ``null`` sets no deadline::

    critical: 7
    high: 7
    medium: 30
    low: 30
    negligible: null
    unknown: null
    kev: 1        # in CISA's Known Exploited Vulnerabilities catalog, whatever the severity

An item without a fixed version has no deadline (nothing to ship yet). An open item past its
deadline is a breach (``bastion sla report --exit-code`` exits 1); a closed item that was closed
after its deadline is marked late. The file is at most 64 KiB, nests at most 64 levels and expands to
at most 1,000 nodes; a refusal names ``file:line`` and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bastion.documents import check_shape, check_yaml
from bastion.errors import InputError
from bastion.factory._cveclock import ClockItem

__all__ = ["MAX_SLA_POLICY_BYTES", "SlaPolicy", "SlaRow", "load_sla_policy", "sla_rows"]

#: A policy is a handful of lines written by a person.
MAX_SLA_POLICY_BYTES = 64 * 1024
_MAX_NODES = 1_000
# Ten years: a deadline longer than that is a typo, and timedelta has a ceiling.
_MAX_DAYS = 3650

Days = Annotated[float, Field(ge=0, le=_MAX_DAYS, allow_inf_nan=False, strict=True)] | None


class SlaPolicy(BaseModel):
    """Days from fix availability, per severity and for KEV membership (``None``: no deadline)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    critical: Days = 7
    high: Days = 7
    medium: Days = 30
    low: Days = 30
    negligible: Days = None
    unknown: Days = None
    kev: Days = 1

    def deadline(self, item: ClockItem) -> float | None:
        """The days ``item`` has: the shorter of its severity's and (in KEV) the KEV deadline."""
        by_severity: float | None = (
            getattr(self, item.severity, None) if item.severity in _SEVERITIES else None
        )
        candidates = [d for d in (by_severity, self.kev if item.kev else None) if d is not None]
        return min(candidates) if candidates else None


_SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")


@dataclass(frozen=True)
class SlaRow:
    """One clock item measured against the policy at ``now``."""

    item: ClockItem
    deadline_days: float | None
    due_at: datetime | None  # fix_available_at + deadline
    open_for: timedelta  # first seen -> closed (or now)
    since_fix: timedelta | None  # fix available -> closed (or now)
    breach: bool  # open and past due
    late: bool  # closed after it was due

    def as_json(self) -> dict[str, Any]:
        item = self.item
        return {
            "image": item.image,
            "vulnerability": item.vulnerability,
            "packages": item.packages,
            "severity": item.severity,
            "kev": item.kev,
            "status": "open" if item.open else "closed",
            "first_seen_at": _time(item.first_seen_at),
            "fix_available_at": _time(item.fix_available_at),
            "fixed_version": item.fixed_version,
            "closed_at": _time(item.closed_at),
            "closed_by_digest": item.closed_digest,
            "deadline_days": self.deadline_days,
            "due_at": _time(self.due_at),
            "open_for_seconds": int(self.open_for.total_seconds()),
            "since_fix_seconds": int(self.since_fix.total_seconds()) if self.since_fix is not None else None,
            "breach": self.breach,
            "late": self.late,
        }


def sla_rows(items: Iterable[ClockItem], policy: SlaPolicy, now: datetime) -> list[SlaRow]:
    """Each item's ages and deadline at ``now``: breaches first, then open items, then closed ones."""
    rows = []
    for item in items:
        end = item.closed_at or now
        days = policy.deadline(item)
        fix = item.fix_available_at
        due = fix + timedelta(days=days) if fix is not None and days is not None else None
        rows.append(
            SlaRow(
                item=item,
                deadline_days=days,
                due_at=due,
                open_for=max(end - item.first_seen_at, timedelta(0)),
                since_fix=max(end - fix, timedelta(0)) if fix is not None else None,
                breach=item.open and due is not None and now > due,
                late=not item.open and due is not None and end > due,
            )
        )
    return sorted(rows, key=lambda row: (not row.breach, not row.item.open))


def _time(moment: datetime | None) -> str | None:
    from bastion._clock import rfc3339

    return rfc3339(moment) if moment is not None else None


def load_sla_policy(path: Path) -> SlaPolicy:
    """The policy in ``path``, or an :class:`InputError` naming ``file:line`` and the field."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SLA_POLICY_BYTES:
            raise InputError(
                f"the SLA policy is {size:,} bytes, more than the {MAX_SLA_POLICY_BYTES:,} accepted",
                where=where,
            )
        text = path.read_bytes()[: MAX_SLA_POLICY_BYTES + 1].decode("utf-8")
        check_yaml(text, where=where, max_nodes=_MAX_NODES)
        data = yaml.safe_load(text)
        check_shape(data, where=where)
        lines = _key_lines(text)
    except OSError as exc:
        raise InputError(f"cannot read the SLA policy: {exc.strerror}", where=where) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"the SLA policy is not UTF-8 text: {exc.reason}", where=where) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"the SLA policy is not valid YAML: {getattr(exc, 'problem', None) or exc}",
            where=f"{where}:{mark.line + 1}" if mark is not None else where,
        ) from None
    if data is None:
        return SlaPolicy()
    if not isinstance(data, dict):
        raise InputError(
            f"the SLA policy is a {type(data).__name__}, not a mapping of days", where=f"{where}:1"
        )
    try:
        return SlaPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "(top level)"
        line = lines.get(field, 1)
        message = "unknown field (expected " + ", ".join((*_SEVERITIES, "kev")) + ")"
        if first["type"] != "extra_forbidden":
            message = f"{_value(first.get('input'))}: days are a number from 0 to {_MAX_DAYS}, or null"
        raise InputError(f"{_shown(field)}: {message}", where=f"{where}:{line}") from None


def _key_lines(text: str) -> Mapping[str, int]:
    """The line of each top-level key (composed once more: the file is small and already bounded)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(key.value): key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)
    }


def _value(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _shown(field: str) -> str:
    return field if len(field) <= 64 and field.isprintable() else repr(field[:61] + "...")
