"""Platform images remembered by what they are made of, so that a rebuild of the same inputs is a no-op.

A platform image is a pure function of its recipe: the merged variant (every field but its tests
and VEX statements, which do not change the image), the locked packages (each by SHA256), the
``SOURCE_DATE_EPOCH``, the os-release facts, the platform, and the code that assembles and writes it.
The recipe's SHA256 names a small record under ``BASTION_HOME/build-cache/`` that points at the
manifest the last build wrote. A record is used only when every blob it needs is still in the store
and, when tests are asked for, when the image was tested: the store's content is addressed by digest,
so what is found is exactly what a rebuild would write (the reproducibility test shows a rebuild
gives the same digest).

A record also says the image's build was finished: it is written only after every attestation the
build is responsible for is attached, so an interrupted build (a wrong password, ``kill -9``) leaves
no record claiming it was. It keeps the predicates only assembly can make (the compliance claims,
evaluated on the in-memory tree), so that a rebuild which reuses the image can still attach them
signed by the key it was asked to use; a record written by a build that did not sign anything does
not know them and is not used by one that signs.

The code is part of the recipe as a digest of Bastion's own source files, not its version number:
during development the version stays the same while what it writes changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import bastion
from bastion.catalog import Variant
from bastion.documents import load_json
from bastion.errors import InputError
from bastion.lock import LockedPlatform
from bastion.oci import Descriptor, Store, canonical_json

# 2: written after the attestations, with the predicates assembly made (version 1 records were
# written before them, so they may stand for an image whose build never attached its attestations).
_RECORD_VERSION = 2
# A record is this build cache's own small file; the bound only keeps a damaged one from costing much.
_MAX_RECORD = 64 * 1024 * 1024


@dataclass(frozen=True)
class CachedPlatform:
    manifest: Descriptor
    packages: int
    layers: int
    removed: int
    tested: str | None  # digest of the tests the image passed (:func:`tests_digest`), None if untested
    # Predicate type -> predicate, of what only assembly can make (the compliance claims); None when
    # the build that wrote the record signed nothing, so it does not know them.
    predicates: Mapping[str, Mapping[str, Any]] | None = None


def recipe_key(
    variant: Variant,
    platform: str,
    locked: LockedPlatform,
    *,
    epoch: int,
    os_release: object,
    sources: Sequence[object] = (),
    upstream: str | None = None,
    base: str | None = None,
) -> str:
    """The SHA256 of everything the platform image is made of (see the module docstring); ``upstream``
    is the digest of what the definition's builds and artifacts put into it."""
    recipe = {
        "record": _RECORD_VERSION,
        "code": _code_digest(),
        "variant": variant.model_dump(mode="json", by_alias=True, exclude={"tests", "vex"}),
        "platform": platform,
        # required-by decides the layer grouping.
        "packages": [(p.name, p.version, p.architecture, p.sha256, p.required_by) for p in locked.packages],
        "epoch": epoch,
        "os-release": repr(os_release),
        "apt-sources": [repr(source) for source in sources],  # a dev image's apt sources and keyring
    }
    if upstream is not None:
        recipe["upstream"] = upstream
    if base is not None:  # from: the base image's platform manifest, whose layers come first
        recipe["base"] = base
    return hashlib.sha256(canonical_json(recipe)).hexdigest()


class BuildCache:
    def __init__(self, root: Path, store: Store) -> None:
        self._root = root
        self._store = store

    def get(self, key: str, *, tests: str | None) -> CachedPlatform | None:
        """The record for ``key`` if its image is whole in the store and, when ``tests`` (a
        :func:`tests_digest`) is given, passed exactly those tests."""
        path = self._root / f"{key}.json"
        try:
            record = load_json(path.read_bytes(), where=str(path), max_bytes=_MAX_RECORD)
            predicates = record["predicates"]
            if predicates is not None and not all(
                isinstance(k, str) and isinstance(v, dict) for k, v in predicates.items()
            ):
                return None
            cached = CachedPlatform(
                manifest=Descriptor.from_json(record["manifest"]),
                packages=int(record["packages"]),
                layers=int(record["layers"]),
                removed=int(record["removed"]),
                tested=record["tested"],
                predicates=predicates,
            )
        except (OSError, InputError, ValueError, KeyError, TypeError, AttributeError):
            return None  # absent or unreadable: build it
        if tests is not None and cached.tested != tests:
            return None
        if not all(self._store.has_blob(d.digest) for d in self._all_blobs(cached.manifest)):
            return None  # collected since: build it again
        return cached

    def put(self, key: str, cached: CachedPlatform) -> None:
        """Remember ``cached`` for ``key``; call it only once the image's attestations are attached."""
        self._root.mkdir(parents=True, exist_ok=True)
        record = {
            "manifest": cached.manifest.to_json(),
            "packages": cached.packages,
            "layers": cached.layers,
            "removed": cached.removed,
            "tested": cached.tested,
            "predicates": None if cached.predicates is None else dict(cached.predicates),
        }
        tmp = self._root / f".{key}.{os.getpid()}.tmp"
        tmp.write_bytes(canonical_json(record))
        tmp.replace(self._root / f"{key}.json")

    def _all_blobs(self, manifest: Descriptor) -> list[Descriptor]:
        if not self._store.has_blob(manifest.digest):
            return [manifest]
        parsed = self._store.read_manifest(manifest)
        return [manifest, parsed.config, *parsed.layers]


def tests_digest(tests: Sequence[BaseModel]) -> str:
    return hashlib.sha256(
        canonical_json([t.model_dump(mode="json", by_alias=True) for t in tests])
    ).hexdigest()


# The packages whose code decides an image's bytes. Whatever else changes (a scanner, a command)
# leaves images as they are; a package that starts writing into images must be added here.
_IMAGE_CODE = ("catalog", "compliance", "debian", "image", "lock", "oci", "pipeline", "sbom")


@cache
def _code_digest() -> str:
    package = Path(bastion.__file__).parent
    digest = hashlib.sha256(bastion.__version__.encode())
    paths = [package / "__init__.py", *(p for name in _IMAGE_CODE for p in (package / name).rglob("*.py"))]
    for path in sorted(paths):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
