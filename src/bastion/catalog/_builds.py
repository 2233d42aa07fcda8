"""Upstream build pipelines (``builds:``) and files taken from other images (``artifacts:``).

A definition may compile programs from upstream sources and copy them into every variant::

    builds:
      - name: hello
        version: "1.0"                  # the upstream version: pkg:generic/hello@1.0 in the SBOM
        source:                         # one of: url + sha256, url + signature + keyring, debian
          url: https://example.org/hello-1.0.tar.gz
          sha256: 4f1c...
        packages: [make]                # besides Debian's essential set and build-essential
        commands: ["make", "make install DESTDIR=/build/out"]
        outputs:
          - {path: out/usr/bin/hello, to: /usr/local/bin/hello, mode: "0755"}
    artifacts:
      - name: busybox
        image: oci-dir:///srv/images/tools@sha256:0123...
        files: [{path: /bin/busybox, to: /usr/local/bin/busybox}]

The build root is made from verified Debian packages, as source builds make theirs
(:mod:`bastion.source`); commands run in the sandbox (:mod:`bastion.sandbox`); see ``docs/definitions.md``.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from bastion.catalog._parts import Model
from bastion.catalog._types import AbsPath, EnvName, Id, Matches, Mode, NonEmpty, unique

__all__ = ["Artifact", "ArtifactFile", "BuildOutput", "BuildSource", "BuildStep", "DebianOrig"]

StepName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9._-]*$", "build step name", "hello", 64)]
#: package-url spec: a name is any string, percent-encoded; Bastion keeps it to a safe set.
ProjectName = Annotated[str, Matches(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", "project name", "hello", 128)]
UpstreamVersion = Annotated[str, Matches(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$", "version", "1.0", 128)]
SourceUrl = Annotated[
    str, Matches(r"^https?://[\x21-\x7e]+$", "http(s) URL", "https://example.org/a.tar.gz", 2048)
]
Sha256 = Annotated[
    str,
    Matches(
        r"^[0-9a-f]{64}$",
        "SHA256 (64 lowercase hex digits)",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        64,
    ),
]
# Components start with a letter, digit or "_": never "..", so a path cannot leave its directory.
RelativePath = Annotated[
    str, Matches(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*(?:/[A-Za-z0-9_][A-Za-z0-9._+-]*)*$",
                 "relative path without '..'", "out/usr/bin/hello", 1024)
]  # fmt: skip
PackageName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9+.-]+$", "Debian package name", "make", 128)]
SourceName = Annotated[str, Matches(r"^[a-z0-9][a-z0-9+.-]+$", "Debian source package name", "zlib", 128)]
DebianVersion = Annotated[
    str, Matches(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$", "Debian version", "1:1.2.13.dfsg-1", 256)
]
PinnedImage = Annotated[
    str, Matches(r"^[\x21-\x7e]+@sha256:[0-9a-f]{64}$", "image reference pinned by digest",
                 "oci-dir:///srv/tools@sha256:0123...", 2048)
]  # fmt: skip
Command = Annotated[str, Field(min_length=1, max_length=65536, pattern=r"^[^\x00]+$")]


class DebianOrig(Model):
    """A Debian source package's upstream tarball, through the verified chain (``Sources`` via InRelease,
    the ``.dsc`` and its files by SHA256 and size)."""

    source: SourceName
    version: DebianVersion | None = None
    """Absent: the highest version the suites' ``Sources`` indices list."""


class BuildSource(Model):
    """Where a build's source tarball comes from, and how it is verified."""

    url: SourceUrl | None = None
    sha256: Sha256 | None = None
    """The tarball's SHA256: the download is refused unless it matches."""
    signature: SourceUrl | None = None
    """A detached OpenPGP signature of the tarball, checked with gpgv against ``keyring``."""
    keyring: RelativePath | None = None
    """An OpenPGP keyring (binary, as gpgv reads it) in the definition's directory."""
    debian: DebianOrig | None = None
    strip: Annotated[int, Field(ge=0, le=8, strict=True)] = 1
    """Leading path components dropped when the tarball is unpacked into ``/build/src``."""

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.debian is not None:
            if self.url or self.sha256 or self.signature or self.keyring:
                raise ValueError(
                    "debian takes the tarball from Debian's verified chain: no url, sha256 or signature"
                )
            return self
        if self.url is None:
            raise ValueError("a source needs url (with sha256, or signature and keyring) or debian")
        if (self.signature is None) != (self.keyring is None):
            raise ValueError("signature and keyring go together")
        if self.sha256 is None and self.signature is None:
            raise ValueError("a url needs sha256, or signature and keyring, to be verified")
        return self


class BuildOutput(Model):
    """A file the build leaves in its tree, copied into the image."""

    path: RelativePath
    """Inside the build tree (``/build``; the source is in ``src/``, ``out/`` is empty for installs)."""
    to: AbsPath
    mode: Mode = "0755"
    uid: Id = 0
    gid: Id = 0


class BuildStep(Model):
    """One upstream build: a verified source, compiled in the sandbox, its outputs copied into the image."""

    name: StepName
    project: ProjectName | None = None
    """The upstream project (the SBOM's ``pkg:generic/<project>@<version>``); default: ``name``."""
    version: UpstreamVersion
    source: BuildSource
    packages: Annotated[tuple[PackageName, ...], unique(str, "package")] = ()
    """Debian packages installed in the build root besides the essential set and build-essential."""
    commands: Annotated[tuple[Command, ...], NonEmpty()]
    """Shell commands (``sh -e``), run in order in ``/build/src``: no network, unprivileged, bounded."""
    environment: dict[EnvName, str] = {}
    timeout: Annotated[int, Field(ge=10, le=86400, strict=True)] = 1800
    """Seconds the commands may take together before the sandbox is killed."""
    outputs: Annotated[tuple[BuildOutput, ...], NonEmpty(), unique(lambda o: o.to, "output")]

    @property
    def project_name(self) -> str:
        return self.project or self.name


class ArtifactFile(Model):
    path: AbsPath
    """The file in the other image."""
    to: AbsPath | None = None
    """Where it goes in this image; default: the same path."""
    mode: Mode | None = None
    """Default: the mode the other image gives it."""
    uid: Id = 0
    gid: Id = 0


class Artifact(Model):
    """Files copied from another OCI image, pinned by its manifest or index digest."""

    name: StepName
    image: PinnedImage
    files: Annotated[tuple[ArtifactFile, ...], NonEmpty(), unique(lambda f: f.to or f.path, "file")]


Builds = Annotated[tuple[BuildStep, ...], unique(lambda step: step.name, "build step")]
Artifacts = Annotated[tuple[Artifact, ...], unique(lambda artifact: artifact.name, "artifact")]
