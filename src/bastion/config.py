"""Settings shared by every command: where Bastion keeps its state (the embedded defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import InputError

DEFAULT_MAX_IMAGE_SIZE = 64 * 1024**3  # 64 GiB
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _size(text: str) -> int:
    """``BASTION_MAX_IMAGE_SIZE``: bytes, or a number with a K, M, G or T suffix (powers of 1024)."""
    value = text.strip().upper().removesuffix("B")
    if not value:
        return DEFAULT_MAX_IMAGE_SIZE
    unit = value[-1] if value[-1] in _UNITS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) == 0:
        raise InputError(f"BASTION_MAX_IMAGE_SIZE={text!r} is not a size", hint="for example 64G or 500M")
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

    @classmethod
    def from_env(cls) -> Settings:
        limit = _size(os.environ.get("BASTION_MAX_IMAGE_SIZE", ""))
        home = os.environ.get("BASTION_HOME")
        if home:
            return cls(Path(home).expanduser(), max_image_size=limit)
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return cls(Path(data) / "bastion", max_image_size=limit)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def index_cache_dir(self) -> Path:
        return self.home / "cache" / "indices"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"
