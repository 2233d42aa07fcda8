"""``factory plan``: poll every tracker, compare, and say what would be rebuilt and why.

:func:`poll` is the one poll (``factory run`` records its :class:`Poll` with
:meth:`~bastion.factory.FactoryState.record`); :func:`plan` adds the comparison and the cascade
and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion import _clock as clock
from bastion.catalog import (
    DebianPackageTracker,
    GithubReleaseTracker,
    GithubTagTracker,
    IncrementTracker,
    JsonUrlTracker,
    OciImageTracker,
    UrlTracker,
)
from bastion.config import Settings
from bastion.factory._debian import LockChange, poll_debian
from bastion.factory._graph import Catalog, Graph, load_catalog
from bastion.factory._http import Http
from bastion.factory._state import TrackerState
from bastion.factory._trackers import (
    Polled,
    TrackerRef,
    poll_github,
    poll_increment,
    poll_json_url,
    poll_oci,
    poll_url,
    variables,
)

__all__ = ["Plan", "Poll", "Rebuild", "TrackerReport", "plan", "poll"]


@dataclass
class Poll:
    """Every tracker's :class:`Polled`, the Debian suites' rows, the locked packages that moved, and
    how many HTTP requests it took."""

    trackers: list[tuple[TrackerRef, Polled]] = field(default_factory=list)
    suites: list[Polled] = field(default_factory=list)
    lock_changes: list[LockChange] = field(default_factory=list)
    requests: int = 0

    def states(self) -> list[TrackerState]:
        """The rows to record."""
        return [polled.state() for _, polled in self.trackers] + [polled.state() for polled in self.suites]


def poll(catalog: Catalog, settings: Settings, previous: Mapping[str, TrackerState]) -> Poll:
    """Poll every tracker of ``catalog`` once (Debian suites once each); never raises for upstream."""
    refs = [
        TrackerRef(name, index, spec)
        for name, definition in catalog.definitions.items()
        for index, spec in enumerate(definition.track)
    ]
    http = Http()
    result = Poll()
    try:
        debian = poll_debian(
            catalog.definitions,
            [ref for ref in refs if isinstance(ref.spec, DebianPackageTracker)],
            catalog.locks,
            settings,
            http,
            previous,
        )
        polled = {p.key: p for p in debian.trackers}
        result.suites, result.lock_changes = debian.suites, debian.lock_changes
        for ref in refs:
            spec, before = ref.spec, previous.get(ref.key)
            if isinstance(spec, GithubReleaseTracker | GithubTagTracker):
                polled[ref.key] = poll_github(ref, before, http)
            elif isinstance(spec, UrlTracker):
                polled[ref.key] = poll_url(ref, before, http)
            elif isinstance(spec, JsonUrlTracker):
                polled[ref.key] = poll_json_url(ref, before, http)
            elif isinstance(spec, OciImageTracker):
                polled[ref.key] = poll_oci(ref, before)
        # Increments last: they count changes of the other variables of their definition.
        for ref in refs:
            if isinstance(ref.spec, IncrementTracker):
                written = _written(catalog, ref.definition)
                now = {**written, **_values_now(catalog, ref.definition, refs, polled)}
                polled[ref.key] = poll_increment(ref, previous.get(ref.key), now, written)
        result.trackers = [(ref, polled[ref.key]) for ref in refs]
    finally:
        result.requests = http.requests
        http.close()
    return result


def _written(catalog: Catalog, name: str) -> dict[str, str]:
    """The variables' values as the definition is written."""
    return {
        var: spec.value for tracker in catalog.definitions[name].track for var, spec in tracker.vars.items()
    }


def _values_now(
    catalog: Catalog, name: str, refs: list[TrackerRef], polled: Mapping[str, Polled]
) -> dict[str, str]:
    values: dict[str, str] = {}
    for ref in refs:
        found = polled.get(ref.key)
        if ref.definition == name and found is not None and found.result is not None:
            values.update(variables(ref, found.result))
    return values


@dataclass(frozen=True)
class TrackerReport:
    key: str
    kind: str
    definition: str
    stored: str | None
    now: str | None
    error: str | None
    changes: Mapping[str, tuple[str, str]]
    """Variables whose value would change: name -> (value in the definition, value now)."""

    def as_json(self) -> dict[str, Any]:
        return {"tracker": self.key, "kind": self.kind, "definition": self.definition, "stored": self.stored,
                "now": self.now, "error": self.error, "changes": {k: list(v) for k, v in self.changes.items()}}  # fmt: skip


@dataclass(frozen=True)
class Rebuild:
    image: str
    reasons: list[str]


@dataclass
class Plan:
    trackers: list[TrackerReport]
    rebuilds: list[Rebuild]
    end_of_life: list[str]
    """Images that would be rebuilt but are past their end of life."""
    requests: int

    def as_json(self) -> dict[str, Any]:
        return {
            "trackers": [t.as_json() for t in self.trackers],
            "rebuild": [{"image": r.image, "reasons": r.reasons} for r in self.rebuilds],
            "end-of-life": self.end_of_life,
        }


def plan(directory: Path, settings: Settings, previous: Mapping[str, TrackerState]) -> Plan:
    """The dry run: what every tracker reports, and the rebuild tree it would cause. Writes nothing."""
    catalog = load_catalog(directory)
    graph = Graph.of(catalog)
    polled = poll(catalog, settings, previous)
    reports: list[TrackerReport] = []
    seeds: dict[str, list[str]] = {}
    for ref, found in polled.trackers:
        changes: dict[str, tuple[str, str]] = {}
        if found.result is not None and found.error is None:
            for var, value in variables(ref, found.result).items():
                written = ref.spec.vars[var].value
                if value != written:
                    changes[var] = (written, value)
        stored = previous.get(ref.key)
        reports.append(
            TrackerReport(ref.key, ref.spec.kind, ref.definition, stored.result if stored else None,
                          found.result, found.error, changes)
        )  # fmt: skip
        for var, (old, new) in changes.items():
            seeds.setdefault(ref.definition, []).append(
                f"track[{ref.index}] {ref.spec.kind}: {var} {old} -> {new}"
            )
    for change in polled.lock_changes:
        seeds.setdefault(change.definition, []).append(
            f"locked {change.package} ({change.architecture}) {change.locked} -> {change.candidate}"
        )
    today = clock.now().date()
    rebuilds, past = [], []
    for name, reasons in graph.cascade(seeds):
        eol = catalog.definitions[name].dates.end_of_life
        if eol is not None and eol < today:
            past.append(name)
        else:
            rebuilds.append(Rebuild(name, reasons))
    return Plan(reports, rebuilds, past, polled.requests)
