"""apt's sources in a dev image: the repositories and keyring the image was built from.

A dev variant has apt so that users can install build dependencies on top of it; apt must then trust
exactly what the build trusted. ``/etc/apt/sources.list.d/debian.sources`` is written in the deb822
format of sources.list(5) ("DEB822-STYLE FORMAT"): one stanza per repository and keyring, with the
lock's suites, the components the packages came from, and ``Signed-By`` naming the keyring the lock's
InRelease files were verified with. That keyring is the image's own file when the image holds one at
the same path with the SHA256 the lock records (Debian's archive keyring, from the
``debian-archive-keyring`` package apt depends on); otherwise the builder's copy, checked against that
SHA256, is put in ``/etc/apt/keyrings/``, the directory sources.list(5) names for keyrings an
administrator adds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion.catalog import Variant
from bastion.debian import host_sources
from bastion.errors import InputError, IntegrityError
from bastion.lock import LockedPlatform, LockFile

__all__ = [
    "KEYRINGS",
    "SOURCES",
    "AptSource",
    "apt_sources",
    "deb822",
    "installed_keyring",
    "keyring_bytes",
    "keyring_place",
]

SOURCES = "etc/apt/sources.list.d/debian.sources"
KEYRINGS = "etc/apt/keyrings"
_WORD = re.compile(r"[^\s#]+")  # sources.list(5): values are white-space separated
_MAX_KEYRING = 16 << 20  # Debian's archive keyring is 56 KiB


@dataclass(frozen=True)
class AptSource:
    """One deb822 stanza: a repository's suites and components, and the keyring (path on the builder,
    as the lock names it, and the SHA256 the lock records) that must sign them."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    keyring: str
    keyring_sha256: str


def _component(filename: str) -> str | None:
    """The archive component of a pool path: ``pool/main/b/bash/...`` -> ``main``; the security
    archive's ``pool/updates/main/...`` -> ``main``."""
    parts = filename.split("/")
    if len(parts) > 3 and parts[:2] == ["pool", "updates"]:
        return parts[2]
    return parts[1] if len(parts) > 2 and parts[0] == "pool" else None


def apt_sources(lock: LockFile, locked: LockedPlatform, variant: Variant) -> tuple[AptSource, ...]:
    """The stanzas of a dev image's sources: every suite of the lock the variant was resolved from,
    grouped by repository and keyring. Components are the definition's for that repository, else
    the host's sources' (which the lock was resolved from when the definition names none), else
    those the image's packages came from."""
    named = {
        (repo.uri.rstrip("/"), suite): tuple(repo.components)
        for repo in variant.contents.repositories or ()
        for suite in repo.suites
    }
    host = {} if named else _host_components()
    pooled: dict[str, set[str]] = {}
    for package in locked.packages:
        if component := _component(package.filename):
            pooled.setdefault(package.repository.rstrip("/"), set()).add(component)
    digests = {ring.path: ring.sha256 for ring in lock.keyrings}
    grouped: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for suite in lock.suites:
        uri = suite.repository.rstrip("/")
        if named and (uri, suite.suite) not in named:
            continue  # another variant's repository
        components = (
            named.get((uri, suite.suite))
            or host.get((uri, suite.suite))
            or tuple(sorted(pooled.get(uri, {"main"})))
        )
        grouped.setdefault((uri, suite.keyring, components), []).append(suite.suite)
    sources = []
    for (uri, keyring, components), suites in grouped.items():
        words = (uri, keyring, *components, *suites)
        if not all(_WORD.fullmatch(word) for word in words):  # one deb822 field value each
            raise InputError(
                f"the lock's repository {uri!r} has a suite, component or keyring with white space"
            )
        if keyring not in digests:
            raise IntegrityError(f"the lock names keyring {keyring} for {uri} but records no SHA256 for it")
        sources.append(AptSource(uri, tuple(suites), components, keyring, digests[keyring]))
    return tuple(sources)


def _host_components() -> dict[tuple[str, str], tuple[str, ...]]:
    """(repository, suite) -> components, from the host's apt sources; empty when they cannot be read
    (a ``--locked`` build on a host without them)."""
    try:
        sources = host_sources()
    except (InputError, OSError):
        return {}
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for source in sources:
        for suite in source.suites:
            found.setdefault((source.uri.rstrip("/"), suite), tuple(source.components))
    return found


def keyring_bytes(source: AptSource) -> bytes:
    """The builder's copy of ``source``'s keyring, if it is still what the lock recorded."""
    try:
        with Path(source.keyring).open("rb") as handle:
            data = handle.read(_MAX_KEYRING + 1)
    except OSError as exc:
        raise InputError(f"cannot read keyring: {exc.strerror}", where=source.keyring) from None
    if len(data) > _MAX_KEYRING:
        raise InputError(f"keyring is larger than {_MAX_KEYRING >> 20} MiB", where=source.keyring)
    if hashlib.sha256(data).hexdigest() != source.keyring_sha256:
        raise IntegrityError(
            f"keyring is not the one the lock was made with (sha256 {source.keyring_sha256})",
            where=source.keyring,
        )
    return data


def keyring_place(source: AptSource, held: Callable[[str], str | None]) -> str | None:
    """The image's own copy of the keyring (its absolute path) when ``held`` (root-relative path ->
    SHA256 of the file the tree holds there, or None) finds the lock's keyring at the same path."""
    inside = source.keyring.lstrip("/")
    return source.keyring if held(inside) == source.keyring_sha256 else None


def installed_keyring(source: AptSource) -> str:
    """Where the builder's copy of the keyring goes when the image holds none (root-relative)."""
    return f"{KEYRINGS}/{Path(source.keyring).name}"


def deb822(sources: tuple[AptSource, ...], signed_by: dict[str, str]) -> bytes:
    """The ``.sources`` file; ``signed_by`` maps each source's keyring to its path in the image."""
    stanzas = []
    for source in sources:
        stanzas.append(
            "\n".join(
                [
                    "Types: deb",
                    f"URIs: {source.uri}",
                    f"Suites: {' '.join(source.suites)}",
                    f"Components: {' '.join(source.components)}",
                    f"Signed-By: {signed_by[source.keyring]}",
                ]
            )
        )
    head = "# Written by Bastion: the repositories and keyring this image was built from.\n"
    return (head + "\n\n".join(stanzas) + "\n").encode()
