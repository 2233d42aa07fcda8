"""Settings shared by every command: where Bastion keeps its state (the embedded defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """``BASTION_HOME`` (default ``~/.local/share/bastion``) holds everything: store, cache, keys, database."""

    home: Path
    jobs: int = 8

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("BASTION_HOME")
        if home:
            return cls(Path(home).expanduser())
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return cls(Path(data) / "bastion")

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def index_cache_dir(self) -> Path:
        return self.home / "cache" / "indices"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"
