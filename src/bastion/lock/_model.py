"""The lock file: ``<definition>.lock.json``.

Everything a build needs to fetch exactly the same bytes again, with no index and no network when
the cache is warm: per variant and platform, every package with its source, file name, SHA256 and
size, plus the signed suites it was resolved from and the keys that signed them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bastion.errors import LockMismatchError

LOCK_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=lambda name: name.replace("_", "-"),
    )


class LockedPackage(_Model):
    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    filename: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    repository: str
    suite: str
    required_by: str | None = None
    relation: str | None = None
    # In the base image (the definition's ``from:``): already in the base's layers, not added again.
    # Written only when true, so locks of definitions without ``from:`` keep their bytes.
    base: bool = Field(default=False, exclude_if=lambda value: not value)

    @property
    def url(self) -> str:
        return f"{self.repository.rstrip('/')}/{self.filename}"


class DroppedRelation(_Model):
    parent: str
    relation: str
    because: str


class LockedPlatform(_Model):
    architecture: str
    packages: list[LockedPackage]
    dropped: list[DroppedRelation] = []


class LockedSuite(_Model):
    repository: str
    suite: str
    codename: str
    date: str
    valid_until: str | None = None
    inrelease_sha256: str
    keyring: str
    signed_by: list[str]


class KeyringRef(_Model):
    path: str
    sha256: str
    fingerprints: list[str]  # keys from this keyring that signed the locked suites


class DefinitionRef(_Model):
    path: str
    sha256: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


# A package the lock says a definition asked for may be named in a message: the characters of a
# definition's package specification only, so a hostile lock cannot break the one-line diagnosis.
# (Repositories and the keyring are compared, never printed.)
_PackageSpec = Annotated[str, Field(pattern=r"^[!A-Za-z0-9+.=:~-]{1,300}$")]


class RequestedRepository(_Model):
    uri: str
    suites: list[str]
    components: list[str]


class Requested(_Model):
    """What one variant's packages were resolved from: its ``contents`` as merged. A lock satisfies a
    definition while every variant still asks for exactly this (:func:`bastion.lock.unsatisfied`)."""

    packages: list[_PackageSpec]
    repositories: list[RequestedRepository] | None  # None: the host's apt sources
    keyring: str  # as the definition writes it
    allow_expired: bool
    bastion_repository: bool = False  # also Bastion's own APT repository (contents.bastion-repository)


class LockedBase(_Model):
    """The image a ``from:`` definition starts from, as it was resolved at lock time: the catalog
    image (``name:variant``), its store reference then, and the image index's digest, which every
    build of this lock starts from (a reproducible build: the tag may move, the digest does not)."""

    image: str
    reference: str
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Base:
    """What resolving a ``from:`` definition starts from: the base image (:class:`LockedBase`) and
    the base's locked packages per variant platform, which count as installed."""

    locked: LockedBase
    packages: Mapping[str, Sequence[LockedPackage]]  # platform -> the base lock's packages


class LockFile(_Model):
    lock_version: int = LOCK_VERSION
    definition: DefinitionRef
    # Variant -> what it was resolved from. Locks written before it was recorded have none; they
    # satisfy only the definition whose digest they name.
    resolved_from: dict[str, Requested] | None = None
    keyrings: list[KeyringRef]
    source_date_epoch: int
    suites: list[LockedSuite]
    variants: dict[str, dict[str, LockedPlatform]]
    # ``from:``: the base image every variant starts from; absent (not written) for other definitions.
    from_: LockedBase | None = Field(default=None, alias="from", exclude_if=lambda value: value is None)

    def platform(self, variant: str, platform: str) -> LockedPlatform:
        try:
            return self.variants[variant][platform]
        except KeyError:
            raise LockMismatchError(
                f"the lock has no entry for variant {variant!r} on {platform}",
                hint="run 'bastion lock --update DEFINITION' to refresh it",
            ) from None
