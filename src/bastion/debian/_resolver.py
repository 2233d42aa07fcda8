"""Dependency resolution: from requested names to the exact set of binary packages.

The rules follow apt's behaviour from an empty root (what ``mmdebstrap --variant=extract`` gives),
because that is the set a Debian user expects:

* ``Pre-Depends`` and ``Depends`` are followed (Policy §7.2); ``Recommends``/``Suggests`` are not.
* Each package's candidate is its highest version across all suites (apt's default pin).
* In an OR group (``a | b``), a group already satisfied by a selected package is left alone;
  otherwise the first alternative that can be installed is chosen (Policy §7.1).
* A virtual package (Policy §7.5) is satisfied by a provider; among several, one already selected
  wins, then the one of highest Priority (apt prefers ``required`` over ``optional``).
* ``:any`` and ``:native`` qualifiers are satisfied by the package of the one architecture we resolve.
* Essential packages are never assumed present: an empty image has nothing in it.
* A definition built ``from:`` another image starts from the base's packages instead (``installed``):
  they satisfy relations as installed packages do for apt, and are never added again; their own
  relations were met when the base was resolved.

Two ways to leave a package out, both recorded in the result rather than silently dropped:

* **exclusions** the user writes (``!mawk``): never installed; an OR group skips them, and a relation
  that only they could satisfy is dropped (the image author takes responsibility);
* the **prune list**, :data:`DEFAULT_PRUNE`: packages that other packages depend on only for their
  maintainer scripts, which Bastion never runs. A relation that names one of them in any alternative
  is dropped unless another alternative is already selected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bastion.debian._index import PackageIndex, PackageRecord
from bastion.debian._version import OrGroup, Relation, parse_relations
from bastion.errors import ResolutionError

#: Depended upon only by maintainer scripts or triggers, which Bastion does not run:
#: - ``debconf``, ``debconf-2.0`` (virtual), ``cdebconf``: configuration prompts in postinst scripts;
#: - ``install-info``: registers info pages from a dpkg trigger (and ``dpkg | install-info`` exists
#:   only for that);
#: - ``init-system-helpers``: ``deb-systemd-helper``/``update-rc.d`` called from postinst scripts.
DEFAULT_PRUNE: frozenset[str] = frozenset(
    {"debconf", "debconf-2.0", "cdebconf", "install-info", "init-system-helpers"}
)

_PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


@dataclass(frozen=True)
class Reason:
    """Why a package is in the set: requested by the user, or needed by ``parent`` through ``relation``."""

    parent: str | None
    relation: str = ""
    field: str = ""

    def __str__(self) -> str:
        return "requested" if self.parent is None else f"{self.parent} {self.field}: {self.relation}"


@dataclass(frozen=True)
class Dropped:
    """A relation not followed, and why (an exclusion or the prune list)."""

    parent: str
    relation: str
    because: str


@dataclass(frozen=True)
class Resolution:
    architecture: str
    packages: tuple[PackageRecord, ...]  # sorted by name
    reasons: dict[str, Reason]
    dropped: tuple[Dropped, ...]

    def names(self) -> list[str]:
        return [p.name for p in self.packages]

    def path(self, name: str) -> list[str]:
        """The dependency path from a requested package down to ``name``."""
        return _chain(self.reasons, name)


def _chain(reasons: dict[str, Reason], name: str) -> list[str]:
    chain = [name]
    reason = reasons.get(name)
    while reason is not None and reason.parent is not None and reason.parent not in chain:
        chain.append(reason.parent)
        reason = reasons.get(reason.parent)
    return list(reversed(chain))


def parse_request(item: str) -> tuple[str, str | None, bool]:
    """``name``, ``name=version`` or ``!name`` → (name, version, excluded)."""
    excluded = item.startswith("!")
    body = item[1:] if excluded else item
    name, _, version = body.partition("=")
    return name.strip(), (version.strip() or None), excluded


def resolve(
    index: PackageIndex,
    requests: list[str],
    *,
    prune: frozenset[str] = DEFAULT_PRUNE,
    installed: Sequence[PackageRecord] = (),
) -> Resolution:
    """Resolve requested names (with ``!name`` exclusions and ``name=version`` pins) for one
    architecture, on top of the ``installed`` packages (a base image's), which the result includes."""
    return _Resolver(index, prune).run(requests, installed)


class _Resolver:
    def __init__(self, index: PackageIndex, prune: frozenset[str]) -> None:
        self.index = index
        self.prune = prune
        self.excluded: set[str] = set()
        self.selected: dict[str, PackageRecord] = {}
        self.reasons: dict[str, Reason] = {}
        self.dropped: list[Dropped] = []
        self.queue: deque[PackageRecord] = deque()

    def run(self, requests: list[str], installed: Sequence[PackageRecord] = ()) -> Resolution:
        for record in installed:  # selected, not queued: the base's relations are met already
            self.selected[record.name] = record
            self.reasons[record.name] = Reason(None, "in the base image")
        wanted: list[tuple[str, str | None]] = []
        for item in requests:
            name, version, excluded = parse_request(item)
            if excluded:
                self.excluded.add(name)
            else:
                wanted.append((name, version))
        for name, version in wanted:
            if name in self.excluded:
                raise ResolutionError(f"package {name} is both requested and excluded (!{name})")
            relation = Relation(name, None, "=" if version else None, version)
            if installed and self._satisfied_by_selection(relation):
                continue  # the base image has it: not added again
            record = self._requested_candidate(relation)
            self._select(record, Reason(None))
        while self.queue:
            record = self.queue.popleft()
            for field_name, value in (("Pre-Depends", record.pre_depends), ("Depends", record.depends)):
                if value:
                    for group in parse_relations(value, self.index.architecture):
                        self._satisfy(record, field_name, group)
        packages = tuple(sorted(self.selected.values(), key=lambda r: r.name))
        return Resolution(self.index.architecture, packages, dict(self.reasons), tuple(self.dropped))

    def _requested_candidate(self, relation: Relation) -> PackageRecord:
        for record in self.index.candidates(relation.name):
            if relation.accepts(record.version):
                return record
        providers = [r for r, _ in self.index.providers(relation.name)] if relation.operator is None else []
        if len(providers) == 1:
            return providers[0]
        available = self._describe(relation.name)
        raise ResolutionError(
            f"requested package {relation} is not available for {self.index.architecture}: {available}"
        )

    def _select(self, record: PackageRecord, reason: Reason) -> None:
        if record.name in self.selected:
            return
        self.selected[record.name] = record
        self.reasons[record.name] = reason
        self.queue.append(record)

    def _satisfied_by_selection(self, rel: Relation) -> bool:
        chosen = self.selected.get(rel.name)
        if chosen is not None and rel.accepts(chosen.version):
            return True
        for provider, provided_version in self.index.providers(rel.name):
            if self.selected.get(provider.name) is provider and (
                rel.operator is None or (provided_version is not None and rel.accepts(provided_version))
            ):
                return True
        return False

    def _satisfy(self, parent: PackageRecord, field_name: str, group: OrGroup) -> None:
        text = " | ".join(str(r) for r in group)
        if any(self._satisfied_by_selection(rel) for rel in group):
            return
        pruned = [rel.name for rel in group if rel.name in self.prune]
        if pruned:
            self.dropped.append(Dropped(parent.name, text, f"prune list ({', '.join(pruned)})"))
            return
        for rel in group:
            if rel.name in self.excluded:
                continue
            choice = self._installable(rel)
            if choice is not None:
                self._select(choice, Reason(parent.name, text, field_name))
                return
        excluded = [rel.name for rel in group if self._only_excluded(rel)]
        if excluded:
            said = ", ".join(f"!{n}" if n in self.excluded else f"every provider of {n}" for n in excluded)
            self.dropped.append(Dropped(parent.name, text, f"excluded ({said})"))
            return
        available = "; ".join(f"{rel.name}: {self._describe(rel.name)}" for rel in group)
        raise ResolutionError(
            f"{parent.name} {parent.version} {field_name} '{text}' cannot be satisfied ({available})",
            where=f"{self.index.architecture}: {' -> '.join(_chain(self.reasons, parent.name))}",
        )

    def _installable(self, rel: Relation) -> PackageRecord | None:
        candidates = self.index.candidates(rel.name)
        if candidates:
            # apt installs a package's candidate (its highest version) or nothing.
            return candidates[0] if rel.accepts(candidates[0].version) else None
        options = [
            provider
            for provider, provided_version in self.index.providers(rel.name)
            if provider.name not in self.excluded
            and provider.name not in self.selected  # a selected one would have satisfied the group
            and self.index.candidates(provider.name)[0] is provider
            and (rel.operator is None or (provided_version is not None and rel.accepts(provided_version)))
        ]
        if not options:
            return None
        return min(options, key=lambda r: (_PRIORITY_RANK.get(r.priority, 5), r.name))

    def _only_excluded(self, rel: Relation) -> bool:
        """Whether exclusions alone stop ``rel`` from being satisfied (the name, or every provider)."""
        if rel.name in self.excluded:
            return True
        providers = {r.name for r, _ in self.index.providers(rel.name)}
        return not self.index.candidates(rel.name) and bool(providers) and providers <= self.excluded

    def _describe(self, name: str) -> str:
        versions = [r.version for r in self.index.candidates(name)]
        providers = sorted({r.name for r, _ in self.index.providers(name)})
        parts = []
        if versions:
            parts.append("versions " + ", ".join(versions))
        if providers:
            parts.append("provided by " + ", ".join(providers))
        if name in self.excluded:
            parts.append("excluded")
        return "; ".join(parts) or "no such package"
