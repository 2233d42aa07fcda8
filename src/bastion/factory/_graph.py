"""The catalog as a dependency graph: which image must be rebuilt after which.

Nodes are the definitions of a catalog directory (``*.yaml`` and ``*/*.yaml``, each with its lock
file when there is one). Edges run from an image to the images that depend on it:

* ``from:`` — a definition built on another catalog image;
* ``oci-image`` — a tracker watching a catalog image's repository (``.../bastion/python:3.11``);
* lock contents are not edges between images but seeds: :meth:`Graph.images_with_package`.

:meth:`Graph.order` is a topological order (each node once); a cycle of ``from:`` is refused with the
cycle named. :meth:`Graph.cascade` gives everything downstream of changed images, in that order,
with the reasons that reach each.
"""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bastion.catalog import Definition, OciImageTracker, load_definition, parse_from
from bastion.errors import InputError

__all__ = ["MAX_DEFINITIONS", "Catalog", "Graph", "load_catalog"]

MAX_DEFINITIONS = 10_000


@dataclass(frozen=True)
class Catalog:
    """The definitions of a catalog directory by name, and their lock files (``None``: none yet)."""

    directory: Path
    definitions: Mapping[str, Definition]
    locks: Mapping[str, object]  # name -> bastion.lock.LockFile


def load_catalog(directory: Path) -> Catalog:
    """Every definition under ``directory`` (``*.yaml``, ``*/*.yaml``), each name once."""
    from bastion.lock import lock_path, read_lock

    if not directory.is_dir():
        raise InputError("not a catalog directory", where=str(directory))
    paths = sorted({*directory.glob("*.yaml"), *directory.glob("*/*.yaml")})
    if len(paths) > MAX_DEFINITIONS:
        raise InputError(f"more than {MAX_DEFINITIONS} definitions", where=str(directory))
    definitions: dict[str, Definition] = {}
    locks: dict[str, object] = {}
    for path in paths:
        definition = load_definition(path)
        if definition.name in definitions:
            first = definitions[definition.name].path
            raise InputError(f"definition {definition.name!r} is also in {first}", where=str(path))
        definitions[definition.name] = definition
        lock = lock_path(path)
        if lock.is_file():
            locks[definition.name] = read_lock(lock, definition_path=path)
    return Catalog(directory, definitions, locks)


@dataclass
class Graph:
    """Images and who depends on whom (upstream -> {downstream: reason})."""

    definitions: Mapping[str, Definition]
    downstream: dict[str, dict[str, str]] = field(default_factory=dict)
    packages: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, catalog: Catalog) -> Graph:
        from bastion.lock import LockFile

        graph = cls(catalog.definitions, {name: {} for name in catalog.definitions})
        images = {
            definition.variant(variant).image: name
            for name, definition in catalog.definitions.items()
            for variant in definition.variant_names()
        }
        for name, definition in catalog.definitions.items():
            if definition.from_ is not None:
                base, variant = parse_from(definition.from_)
                if base not in catalog.definitions:
                    raise InputError(f"from: no catalog definition {base!r}", where=str(definition.path))
                if variant not in catalog.definitions[base].variant_names():
                    raise InputError(f"from: {base!r} has no variant {variant!r}", where=str(definition.path))
                graph.downstream[base][name] = f"from: {definition.from_}"
            for index, tracker in enumerate(definition.track):
                if isinstance(tracker, OciImageTracker):
                    repository = tracker.image.rsplit(":", 1)[0]
                    for image, upstream in images.items():
                        if upstream != name and (repository == image or repository.endswith("/" + image)):
                            graph.downstream[upstream].setdefault(
                                name, f"track[{index}] oci-image {tracker.image}"
                            )
        for name, lock in catalog.locks.items():
            assert isinstance(lock, LockFile)
            for platforms in lock.variants.values():
                for platform in platforms.values():
                    for package in platform.packages:
                        graph.packages.setdefault(package.name, set()).add(name)
        graph.order()  # refuse a cycle as soon as the graph is made
        return graph

    def images_with_package(self, package: str) -> set[str]:
        """The images whose lock contains ``package``."""
        return self.packages.get(package, set())

    def upstream(self, name: str) -> list[str]:
        """The images ``name`` depends on directly."""
        return sorted(up for up, children in self.downstream.items() if name in children)

    def order(self) -> list[str]:
        """Every image after the images it depends on (ties by name, so the order is stable)."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name in sorted(self.downstream):
            sorter.add(name)
            for child in sorted(self.downstream[name]):
                sorter.add(child, name)
        try:
            sorter.prepare()
        except graphlib.CycleError as err:
            cycle = list(err.args[1])
            via = [self.downstream[a][b] for a, b in itertools.pairwise(cycle) if b in self.downstream[a]]
            kind = "from:" if all(v.startswith("from:") for v in via) else "dependency"
            where = str(self.definitions[cycle[0]].path) if cycle[0] in self.definitions else None
            raise InputError(f"{kind} cycle: {' -> '.join(cycle)}", where=where) from None
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            order.extend(ready)
            sorter.done(*ready)
        return order

    def cascade(self, seeds: Mapping[str, list[str]]) -> list[tuple[str, list[str]]]:
        """The images to rebuild, in dependency order, each once with every reason that reaches it:
        the seeds' own reasons, and ``after <image> (<edge>)`` for each upstream being rebuilt."""
        reasons: dict[str, list[str]] = {name: list(why) for name, why in seeds.items() if why}
        result: list[tuple[str, list[str]]] = []
        for name in self.order():
            if name not in reasons:
                continue
            result.append((name, reasons[name]))
            for child, edge in self.downstream.get(name, {}).items():
                reasons.setdefault(child, []).append(f"after {name} ({edge})")
        return result
