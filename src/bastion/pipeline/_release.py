"""The Debian release an image's packages come from, and what its os-release file says."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.config import REPOSITORY_SUITE
from bastion.lock import LockFile


@dataclass(frozen=True)
class OsRelease:
    """What ``/usr/lib/os-release`` says: the image's name and version, and the Debian release."""

    name: str
    version: str
    debian_version: str
    codename: str


# Debian's release numbers by codename (https://www.debian.org/releases/); os-release's VERSION_ID is
# what scanners match vulnerability data on, so an unknown codename leaves it empty rather than guess.
_DEBIAN_VERSIONS = {"bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}


def debian_release(lock: LockFile) -> tuple[str, str]:
    """The Debian codename and version the packages came from, read from the locked suites
    (``bookworm-security`` and ``bookworm-updates`` belong to ``bookworm``). Bastion's own repository
    (suite ``bastion``) holds rebuilds of that release's packages and names no release of its own."""
    codenames = sorted(
        {s.codename.split("-", 1)[0] for s in lock.suites if s.codename and s.codename != REPOSITORY_SUITE}
    )
    codename = codenames[0] if len(codenames) == 1 else "+".join(codenames)
    return codename, _DEBIAN_VERSIONS.get(codename, "")
