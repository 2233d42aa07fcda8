"""Package definitions: a Debian source package Bastion rebuilds, optionally patched.

A package definition (``catalog/packages/<name>/<name>.yaml``; ``docs/package-schema.json`` is its schema)::

    source: zlib                      # the Debian source package
    version: "1:1.2.13.dfsg-1"        # optional: the highest version in the suites when absent
    revision: 1                       # the built version is <debian version>+bastion<revision>
    reason: "Check the window bits in inflateInit2"   # the changelog entry's first line
    repositories:                     # absent: the host's apt sources (which must serve deb-src)
      - {uri: http://mirror.example/debian, suites: [bookworm], components: [main]}
    patches:                          # files beside the definition, applied in order as quilt patches
      - {file: check-window-bits.patch, fixes: [CVE-2099-0001]}
    platforms: [linux/amd64]

Patch files are read relative to the definition's directory and must stay inside it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from bastion.catalog._parts import Keyring, Model, Repository
from bastion.catalog._types import Matches, NonEmpty, PlatformName, unique
from bastion.catalog._vex import VulnerabilityId
from bastion.debian import DEFAULT_KEYRING

__all__ = ["PackageDefinition", "Patch"]

#: Debian Policy §5.6.1: source package names.
SourceName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9+.-]+$", "Debian source package name", "zlib", 128)]
#: Debian Policy §5.6.12: [epoch:]upstream[-revision].
DebianVersion = Annotated[
    str, Matches(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$", "Debian version", "1:1.2.13.dfsg-1", 256)
]
# Components start with a letter, digit or "_": never "..", so a path cannot leave the directory.
PatchPath = Annotated[
    str, Matches(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*(?:/[A-Za-z0-9_][A-Za-z0-9._+-]*)*$",
                 "relative path inside the definition's directory", "fix-header.patch", 1024)
]  # fmt: skip
#: A changelog line (Policy §4.4): one line of text, no control characters.
Reason = Annotated[str, Field(min_length=1, max_length=400, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Patch(Model):
    """One patch in the repository, added as a new quilt patch (``debian/patches/series``)."""

    file: PatchPath
    """The patch file, relative to the definition's directory (a unified diff, applied with -p1)."""
    fixes: Annotated[tuple[VulnerabilityId, ...], unique(str, "vulnerability")] = ()
    """The vulnerabilities the patch fixes: the build states them fixed (OpenVEX ``fixed``)."""


class PackageDefinition(Model):
    """A Debian source package to rebuild, with Bastion's patches and version suffix."""

    source: SourceName
    version: DebianVersion | None = None
    """The source version to rebuild; absent: the highest the suites' Sources indices list."""
    revision: Annotated[int, Field(ge=1, le=9999, strict=True)] = 1
    """Bastion's revision N: the built version is ``<debian version>+bastion<N>``."""
    reason: Reason
    """Why Bastion rebuilds it: the first line of the new changelog entry."""
    repositories: Annotated[tuple[Repository, ...], NonEmpty()] | None = None
    """Where the source comes from (deb-src); absent: the host's apt sources."""
    keyring: Keyring = str(DEFAULT_KEYRING)
    """OpenPGP keyring the repositories' InRelease must verify against."""
    allow_expired: StrictBool = False
    patches: Annotated[tuple[Patch, ...], unique(lambda p: p.file, "patch")] = ()
    platforms: Annotated[tuple[PlatformName, ...], NonEmpty(), unique(str, "platform")] = ("linux/amd64",)
    timeout: Annotated[int, Field(ge=60, le=86400, strict=True)] = 7200
    """Seconds the build may take in the sandbox before it is killed."""

    @property
    def fixes(self) -> tuple[str, ...]:
        return tuple(sorted({cve for patch in self.patches for cve in patch.fixes}))
