"""Layering: which paths go into which layer.

Not one giant layer (nothing shared between images) and not one per package (hundreds of layers
slow every pull): package files are grouped, in a stable order, into at most :data:`MAX_PACKAGE_LAYERS`
layers of roughly equal size, and everything Bastion generates or changed goes into one last, small
layer. The order puts the packages most others depend on first (``libc6`` before ``python3.11``), so
images built from overlapping package sets share their lower layers when the groups coincide.
Each layer carries the parent directories of its entries, with their metadata from the tree.

A package's own records in the dpkg database (``status.d/<name>`` and its ``.md5sums`` in runtime
images, ``info/<name>.*`` in dev images), though Bastion writes them, go into the layer of the
package's files: a scanner that reads one layer at a time (Trivy's per-layer analysis drops language
packages a distribution package owns only when its ``.list`` is in the same layer) then sees the
package and its files together.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from bastion.oci import (
    MEDIA_TYPE_LAYER_GZIP,
    BlobWriter,
    Layer,
    LayerEntry,
    PartCache,
    Store,
    write_layer_parts,
)
from bastion.pipeline._assemble import Node

# status.d/<name>[.md5sums] and info/<name>[:<arch>].<member>, dpkg's names for one package's records.
_PACKAGE_RECORD = re.compile(
    r"^var/lib/dpkg/(?:status\.d/(?P<d>[a-z0-9][a-z0-9+.-]*?)(?:\.md5sums)?"
    r"|info/(?P<i>[a-z0-9][a-z0-9+.-]*?)(?::[a-z0-9-]+)?\.[a-z0-9_]+)$"
)
MAX_PACKAGE_LAYERS = 6
MIN_LAYER_BYTES = 4 << 20
GENERATED = "bastion"


@dataclass(frozen=True)
class LayerPlan:
    packages: tuple[str, ...]  # empty for the generated layer
    entries: tuple[LayerEntry, ...]
    # The entries in the parts the layer is written in (:func:`bastion.oci.add_layer_parts`): first
    # the directories and what Bastion wrote, then each package's files, in ``packages`` order.
    parts: tuple[tuple[LayerEntry, ...], ...]

    @property
    def description(self) -> str:
        return (
            "bastion: accounts, dpkg database, os-release, CA bundle, SBOM"
            if not self.packages
            else ("packages: " + " ".join(self.packages))
        )


def plan_layers(
    nodes: dict[str, Node], package_order: Sequence[str], *, in_base: frozenset[str] = frozenset()
) -> list[LayerPlan]:
    """Split the tree into layers; ``package_order`` is the stable order packages are grouped in.
    ``in_base``: packages a base image's layers already hold (``from:``), whose files and dpkg
    records are left out (the layers below hold the same bytes)."""
    by_owner: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    packages = {node.owner for node in nodes.values()} - {GENERATED}
    for path, node in nodes.items():
        if node.entry.kind == "dir" and node.owner != GENERATED:
            continue  # directories travel with whatever they contain (added below as parents)
        owner = _record_of(path, packages) if node.owner == GENERATED else node.owner
        if owner in in_base:
            continue
        by_owner.setdefault(owner, []).append(path)
        sizes[owner] = sizes.get(owner, 0) + node.entry.size
    # Directories nothing lives under (empty dirs a package ships) still belong to their package.
    ancestors = {path.rpartition("/")[0] for path in nodes}
    for path, node in nodes.items():
        if node.entry.kind == "dir" and node.owner not in in_base | {GENERATED} and path not in ancestors:
            by_owner.setdefault(node.owner, []).append(path)

    owners = [name for name in package_order if name in by_owner]
    total = sum(sizes.get(name, 0) for name in owners)
    budget = max(total // MAX_PACKAGE_LAYERS + 1, MIN_LAYER_BYTES)
    groups: list[list[str]] = [[]]
    filled = 0
    for name in owners:
        if groups[-1] and filled + sizes.get(name, 0) > budget and len(groups) < MAX_PACKAGE_LAYERS:
            groups.append([])
            filled = 0
        groups[-1].append(name)
        filled += sizes.get(name, 0)
    plans = [_plan(nodes, tuple(group), [p for o in group for p in by_owner[o]]) for group in groups if group]
    leftovers = [p for owner, paths in by_owner.items() if owner not in owners for p in paths]
    plans.append(_plan(nodes, (), leftovers))
    return plans


def _plan(nodes: dict[str, Node], packages: tuple[str, ...], paths: list[str]) -> LayerPlan:
    entries = _with_parents(nodes, paths)
    parts: dict[str, list[LayerEntry]] = {GENERATED: [], **{name: [] for name in packages}}
    for entry in entries:
        # A hardlink travels with its target (a file of the same package, or promoted from one).
        owner = nodes[entry.linkname if entry.kind == "hardlink" else entry.path].owner
        parts[owner if entry.kind != "dir" and owner in parts else GENERATED].append(entry)
    return LayerPlan(packages, entries, tuple(tuple(part) for part in parts.values() if part))


def _record_of(path: str, packages: set[str]) -> str:
    """The package whose dpkg record ``path`` is, if that package has files here; else Bastion."""
    match = _PACKAGE_RECORD.match(path)
    name = match.group("d") or match.group("i") if match else None
    return name if name in packages else GENERATED


def _with_parents(nodes: dict[str, Node], paths: list[str]) -> tuple[LayerEntry, ...]:
    chosen: set[str] = set()
    for path in paths:
        chosen.add(path)
        parent = path.rpartition("/")[0]
        while parent and parent not in chosen:
            chosen.add(parent)
            parent = parent.rpartition("/")[0]
    return tuple(nodes[p].entry for p in sorted(chosen))


class StagedLayers:
    """Layers written in background threads while the build goes on (zlib, hashing and file reads
    release the GIL), into blobs that are committed by :meth:`finish` once the image passed.
    Leaving the ``with`` block without it removes every uncommitted one: a build that fails after
    its layers were written (an image test, a compliance claim) leaves nothing in the store. (A
    failure while committing, such as a full disk, can leave the blobs committed before it: they are
    whole, content-addressed and unreferenced.)"""

    def __init__(self, store: Store, *, source_date_epoch: int, cache: PartCache | None) -> None:
        self._store = store
        self._epoch = source_date_epoch
        self._cache = cache
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="layer")
        self._futures: list[Future[tuple[BlobWriter, Layer]]] = []
        self._writers = contextlib.ExitStack()
        self._lock = threading.Lock()

    def __enter__(self) -> StagedLayers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._writers.close()  # aborts every writer not committed

    def _write(self, plan: LayerPlan) -> tuple[BlobWriter, Layer]:
        writer = self._store.blob_writer(MEDIA_TYPE_LAYER_GZIP)
        with self._lock:
            self._writers.enter_context(writer)
        return writer, write_layer_parts(plan.parts, writer, source_date_epoch=self._epoch, cache=self._cache)

    def start(self, plans: Sequence[LayerPlan]) -> None:
        self._futures += [self._pool.submit(self._write, plan) for plan in plans]

    def wait(self) -> None:
        """Wait until every layer started so far is written (not committed)."""
        for future in self._futures:
            future.result()

    def finish(self, plans: Sequence[LayerPlan]) -> list[Layer]:
        """Write ``plans`` too, wait for every layer, and commit them all, in the order started."""
        self.start(plans)
        written = [future.result() for future in self._futures]
        for writer, layer in written:
            writer.commit(layer.descriptor.digest, layer.descriptor.size)
        return [layer for _, layer in written]
