"""``from:`` builds: a definition that starts from another catalog image's layers and adds packages,
files, accounts and configuration (an application image on the python runtime).

At lock time (:func:`base_supply`) the base is found twice: its definition in the same catalog (the
definition's own directory, or the catalog directory above it, as ``bastion factory`` lays a catalog
out: ``NAME.yaml`` or ``NAME/NAME.yaml``), whose lock gives the packages the base already has, and
its image in the local store by the variant's first tag, whose index digest the new lock records
(``from: {image, reference, digest}``). Resolution starts from the base's packages (they satisfy
relations and are never added again) and the lock lists them marked ``base``.

At build time (:func:`base_image`) the base is taken from the store *by the lock's digest*, never by
its tag, so a lock builds the same image on any day. The new image's layers are the base's, reused
by digest (not written again), then layers of what the definition adds: the files of the packages
not in the base, and Bastion's own files (accounts, the dpkg database of every package, os-release,
the SBOM), which replace the base's copies. The image is assembled whole (the base's packages from
their verified files, the definition's accounts and paths merged over the base's), so the image
tests, the compliance claims and the SBOM see what a container of the image will see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.catalog import Definition, Variant, load_definition, parse_from
from bastion.config import Settings
from bastion.errors import InputError
from bastion.lock import Base, LockedBase, LockFile, lock_path, read_lock
from bastion.oci import HistoryEntry, Layer, Platform, Store, load_json_object, select_manifest

if TYPE_CHECKING:
    from bastion.lock import LockedPackage

__all__ = ["BaseImage", "base_image", "base_ready", "base_supply", "base_variant", "find_base", "on_base"]


def find_base(definition: Definition) -> tuple[Definition, Variant]:
    """The catalog definition and variant ``definition``'s ``from:`` names."""
    if definition.from_ is None:
        raise InputError("the definition has no from:", where=str(definition.path))
    name, variant = parse_from(definition.from_)
    here = definition.path.parent
    tried = []
    for directory in (here, here.parent):
        for path in (directory / f"{name}.yaml", directory / name / f"{name}.yaml"):
            if path.resolve() == definition.path.resolve() or path in tried:
                continue
            tried.append(path)
            if path.is_file():
                base = load_definition(path)
                if base.name == name:
                    if base.from_ is not None:
                        raise InputError(
                            f"from: {definition.from_} starts from another image itself (from: {base.from_});"
                            " build on the image it starts from",
                            where=str(definition.path),
                        )
                    return base, base.variant(variant)
    looked = ", ".join(str(p) for p in tried)
    raise InputError(
        f"from: no catalog definition {name!r} (looked for {looked})", where=str(definition.path)
    )


def base_supply(definition: Definition, store: Store) -> Base:
    """The base image as the store holds it now, and its lock's packages (lock time)."""
    base, variant = find_base(definition)
    reference = f"{variant.image}:{variant.tags[0]}"
    found = store.find(reference)
    if found is None:
        raise InputError(
            f"from: the base image {reference} is not in the local store",
            where=str(definition.path),
            hint=f"build it first: bastion build {base.path}",
        )
    path = lock_path(base.path)
    lock = read_lock(path, definition_path=base.path)
    platforms: dict[str, list[LockedPackage]] = {
        platform: list(entry.packages) for platform, entry in lock.variants.get(variant.name, {}).items()
    }
    image = f"{base.name}:{variant.name}"
    return Base(LockedBase(image=image, reference=reference, digest=found.digest), platforms)


def base_ready(definition: Definition, settings: Settings) -> bool:
    """Whether the image ``definition``'s ``from:`` names is in the local store (tagged)."""
    _base, variant = find_base(definition)
    return Store(settings.store_dir).find(f"{variant.image}:{variant.tags[0]}") is not None


def base_variant(definition: Definition) -> Variant | None:
    """The base's variant, whose accounts and paths a ``from:`` image keeps; None without ``from:``."""
    return find_base(definition)[1] if definition.from_ is not None else None


def on_base(variant: Variant, base: Variant) -> Variant:
    """``variant`` with the base's users, groups and paths under its own (its own win by name or
    path): what the whole image holds, so ``/etc/passwd`` keeps the base's accounts."""
    users = {u.name: u for u in base.accounts.users} | {u.name: u for u in variant.accounts.users}
    groups = {g.name: g for g in base.accounts.groups} | {g.name: g for g in variant.accounts.groups}
    paths = {p.path: p for p in base.paths} | {p.path: p for p in variant.paths}
    accounts = variant.accounts.model_copy(
        update={"users": tuple(users.values()), "groups": tuple(groups.values())}
    )
    return variant.model_copy(update={"accounts": accounts, "paths": tuple(paths.values())})


@dataclass(frozen=True)
class BaseImage:
    """One platform of the base image: its layers (reused by digest), their history entries, and
    the names of the packages those layers hold."""

    digest: str  # the platform manifest's
    reference: str
    layers: tuple[Layer, ...]
    history: tuple[HistoryEntry, ...]
    packages: frozenset[str]


def base_image(store: Store, lock: LockFile, variant: str, platform: str, *, where: Path) -> BaseImage:
    """The base of ``lock`` for ``platform``, read from the store by the lock's digest."""
    base = lock.from_
    if base is None:
        raise InputError("the lock names no base image", where=str(where))
    found = store.find(base.digest)
    if found is None:
        raise InputError(
            f"from: the base image {base.reference}@{base.digest} the lock names is not in the local store",
            where=str(where),
            hint="build the base image again, or 'bastion lock --update' on the current one",
        )
    manifest_desc = select_manifest(store, found, Platform.parse(platform))
    manifest = store.read_manifest(manifest_desc)
    config = load_json_object(store.read_blob(manifest.config.digest), "config", manifest.config.digest)
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    history = config.get("history")
    if (
        not isinstance(diff_ids, list)
        or len(diff_ids) != len(manifest.layers)
        or not all(isinstance(d, str) for d in diff_ids)
        or not isinstance(history, list)
        or not all(isinstance(h, Mapping) for h in history)
    ):
        raise InputError("the base image's config does not list its layers", where=manifest.config.digest)
    entries = tuple(
        HistoryEntry(
            created_by=str(h.get("created_by", "")),
            comment=str(h.get("comment", "")),
            empty_layer=bool(h.get("empty_layer", False)),
        )
        for h in history
    )
    layers = tuple(Layer(d, diff) for d, diff in zip(manifest.layers, diff_ids, strict=True))
    names = frozenset(p.name for p in lock.platform(variant, platform).packages if p.base)
    return BaseImage(manifest_desc.digest, base.reference, layers, entries, names)
