"""SLSA Build Provenance v1 (https://slsa.dev/spec/v1.0/provenance) for a Bastion build.

``buildDefinition.buildType`` is :data:`bastion.identifiers.SLSA_BUILD_TYPE`, documented in ``docs/provenance.md``: it fixes
what ``externalParameters`` (what the user chose) and ``resolvedDependencies`` (every input the build
read, by digest) mean for a Bastion image build. ``runDetails`` says who built it and when.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion import __version__
from bastion.identifiers import SLSA_BUILD_TYPE, SLSA_BUILDER_ID


@dataclass(frozen=True)
class Dependency:
    """An input the build read: its URI, SHA256 and, optionally, a name (e.g. the package name)."""

    uri: str
    sha256: str
    name: str | None = None


@dataclass(frozen=True)
class BuildRecord:
    definition: Path
    variant: str
    platforms: tuple[str, ...]
    platform: str  # the platform image this provenance is for
    locked: bool
    source_date_epoch: int
    dependencies: tuple[Dependency, ...]
    invocation_id: str
    started_on: str  # RFC 3339
    finished_on: str


def provenance(record: BuildRecord) -> dict[str, Any]:
    """The predicate (SLSA v1 ``Provenance``) for one platform image of a build."""
    definition = record.definition.resolve()
    external: dict[str, Any] = {
        "definition": {
            "path": _display_path(definition),
            "sha256": hashlib.sha256(definition.read_bytes()).hexdigest(),
        },
        "variant": record.variant,
        "platforms": list(record.platforms),
        "locked": record.locked,
    }
    source = _git_source(definition)
    if source is not None:
        external["source"] = source
    return {
        "buildDefinition": {
            "buildType": SLSA_BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {
                "platform": record.platform,
                "sourceDateEpoch": record.source_date_epoch,
            },
            "resolvedDependencies": [_descriptor(d) for d in record.dependencies],
        },
        "runDetails": {
            "builder": {"id": SLSA_BUILDER_ID, "version": {"bastion": __version__}},
            "metadata": {
                "invocationId": record.invocation_id,
                "startedOn": record.started_on,
                "finishedOn": record.finished_on,
            },
        },
    }


def _descriptor(dependency: Dependency) -> dict[str, Any]:
    """A ResourceDescriptor (in-toto attestation v1 ``resource_descriptor.md``)."""
    out: dict[str, Any] = {"uri": dependency.uri, "digest": {"sha256": dependency.sha256}}
    if dependency.name:
        out["name"] = dependency.name
    return out


def _display_path(path: Path) -> str:
    root = _git(path.parent, "rev-parse", "--show-toplevel")
    if root is not None:
        try:
            return str(path.relative_to(Path(root)))
        except ValueError:
            pass
    return str(path)


def _git_source(definition: Path) -> dict[str, Any] | None:
    """The commit of the git checkout the definition is in, and whether the definition differs from
    it; None outside a checkout (or without git)."""
    commit = _git(definition.parent, "rev-parse", "HEAD")
    if commit is None:
        return None
    dirty = _git(definition.parent, "status", "--porcelain", "--", definition.name)
    remote = _git(definition.parent, "config", "--get", "remote.origin.url")
    source: dict[str, Any] = {"commit": commit, "definitionModified": bool(dirty)}
    if remote:
        source["repository"] = remote
    return source


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def dependencies_from(items: Sequence[tuple[str, str, str | None]]) -> tuple[Dependency, ...]:
    """Dependencies from ``(uri, sha256, name)`` triples, sorted and without repeats."""
    return tuple(Dependency(u, s, n) for u, s, n in sorted(set(items), key=lambda t: (t[0], t[1])))
