"""The keyring Debian's archive is verified against unless a definition or source names another: the
one the ``debian-archive-keyring`` package installs. Its own module, stdlib only, so the catalog can
default to it without loading the repository client."""

from pathlib import Path

__all__ = ["DEFAULT_KEYRING"]

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
