"""Layering: which paths go into which layer.

Not one giant layer (nothing shared between images) and not one per package (hundreds of layers
slow every pull): package files are grouped, in a stable order, into at most :data:`MAX_PACKAGE_LAYERS`
layers of roughly equal size, and everything Bastion generates or changed goes into one last, small
layer. The order puts the packages most others depend on first (``libc6`` before ``python3.11``), so
images built from overlapping package sets share their lower layers when the groups coincide.
Each layer carries the parent directories of its entries, with their metadata from the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bastion.build._assemble import Node
from bastion.oci import LayerEntry

MAX_PACKAGE_LAYERS = 6
MIN_LAYER_BYTES = 4 << 20
GENERATED = "bastion"


@dataclass(frozen=True)
class LayerPlan:
    packages: tuple[str, ...]  # empty for the generated layer
    entries: tuple[LayerEntry, ...]

    @property
    def description(self) -> str:
        return (
            "bastion: accounts, dpkg database, os-release, CA bundle"
            if not self.packages
            else ("packages: " + " ".join(self.packages))
        )


def plan_layers(nodes: dict[str, Node], package_order: Sequence[str]) -> list[LayerPlan]:
    """Split the tree into layers; ``package_order`` is the stable order packages are grouped in."""
    by_owner: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for path, node in nodes.items():
        if node.entry.kind == "dir" and node.owner != GENERATED:
            continue  # directories travel with whatever they contain (added below as parents)
        by_owner.setdefault(node.owner, []).append(path)
        sizes[node.owner] = sizes.get(node.owner, 0) + (
            node.entry.source.stat().st_size if node.entry.source else 0
        )
    # Directories nothing lives under (empty dirs a package ships) still belong to their package.
    ancestors = {path.rpartition("/")[0] for path in nodes}
    for path, node in nodes.items():
        if node.entry.kind == "dir" and node.owner != GENERATED and path not in ancestors:
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
    plans = [
        LayerPlan(tuple(group), _with_parents(nodes, [p for o in group for p in by_owner[o]]))
        for group in groups
        if group
    ]
    leftovers = [p for owner, paths in by_owner.items() if owner not in owners for p in paths]
    plans.append(LayerPlan((), _with_parents(nodes, leftovers)))
    return plans


def _with_parents(nodes: dict[str, Node], paths: list[str]) -> tuple[LayerEntry, ...]:
    chosen: set[str] = set()
    for path in paths:
        chosen.add(path)
        parent = path.rpartition("/")[0]
        while parent and parent not in chosen:
            chosen.add(parent)
            parent = parent.rpartition("/")[0]
    return tuple(nodes[p].entry for p in sorted(chosen))
