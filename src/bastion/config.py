"""Settings shared by every command: where Bastion keeps its state (the embedded defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import InputError

DEFAULT_MAX_IMAGE_SIZE = 64 * 1024**3  # 64 GiB
#: The signed SPDX SBOM of the 317-package ``benchmarks/large`` image is 4.4 MB, more than the 4 MiB a
#: manifest may be (it grows with each package's licence texts); the bound leaves room for images
#: fifty times larger while keeping what one attestation makes a command hold in memory finite.
DEFAULT_MAX_ATTESTATION_SIZE = 256 * 1024**2  # 256 MiB
#: What one side of an upstream review (bastion.review) may hold in memory: its changed files from git,
#: or a release tarball and its members.
DEFAULT_MAX_REVIEW_SIZE = 512 * 1024**2  # 512 MiB
ENV_MAX_IMAGE_SIZE = "BASTION_MAX_IMAGE_SIZE"
ENV_MAX_REVIEW_SIZE = "BASTION_MAX_REVIEW_SIZE"
ENV_MAX_ATTESTATION_SIZE = "BASTION_MAX_ATTESTATION_SIZE"
#: Bastion's own APT repository (``Settings.repository_dir``): its one suite, its component and the file
#: name of its published key (what ``gpgv --keyring``, apt's Signed-By and definitions use).
REPOSITORY_SUITE = "bastion"
REPOSITORY_COMPONENT = "main"
REPOSITORY_KEYRING = "bastion-archive-keyring.gpg"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _size(name: str, default: int) -> int:
    """The environment variable ``name``: bytes, or a number with a K, M, G or T suffix (powers of
    1024); ``default`` when it is unset or empty."""
    text = os.environ.get(name, "")
    value = text.strip().upper().removesuffix("B")
    if not value:
        return default
    unit = value[-1] if value[-1] in _UNITS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) == 0:
        raise InputError(f"{name}={text!r} is not a size", hint="for example 64G or 500M")
    return int(number) * _UNITS[unit]


@dataclass(frozen=True)
class Settings:
    """``BASTION_HOME`` (default ``~/.local/share/bastion``) holds everything: store, cache, keys, database."""

    home: Path
    jobs: int = 8
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE
    """The most bytes an image may expand to when it is opened for scanning (its layers uncompressed):
    a small compressed layer can decompress to far more than the disk holds. ``BASTION_MAX_IMAGE_SIZE``
    (bytes, or with a K, M, G or T suffix)."""
    max_attestation_size: int = DEFAULT_MAX_ATTESTATION_SIZE
    """The most bytes one attestation (a Sigstore bundle or DSSE envelope) read back from the store, a
    layout or a registry may hold; manifests and indexes keep the distribution spec's 4 MiB.
    ``BASTION_MAX_ATTESTATION_SIZE`` (bytes, or with a K, M, G or T suffix)."""
    max_review_size: int = DEFAULT_MAX_REVIEW_SIZE
    """The most bytes one side of an upstream diff review may hold: a release tarball (compressed, and its
    members uncompressed) or the changed files read from git. ``BASTION_MAX_REVIEW_SIZE``."""

    @classmethod
    def from_env(cls) -> Settings:
        limits = {
            "max_image_size": _size(ENV_MAX_IMAGE_SIZE, DEFAULT_MAX_IMAGE_SIZE),
            "max_attestation_size": _size(ENV_MAX_ATTESTATION_SIZE, DEFAULT_MAX_ATTESTATION_SIZE),
            "max_review_size": _size(ENV_MAX_REVIEW_SIZE, DEFAULT_MAX_REVIEW_SIZE),
        }
        home = os.environ.get("BASTION_HOME")
        if home:
            return cls(Path(home).expanduser(), **limits)
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return cls(Path(data) / "bastion", **limits)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def index_cache_dir(self) -> Path:
        return self.home / "cache" / "indices"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def repository_dir(self) -> Path:
        """Bastion's own APT repository (``bastion source build``), with the provenance and OpenVEX
        documents of what it built (``provenance/``, ``vex/``)."""
        return self.home / "repository"
