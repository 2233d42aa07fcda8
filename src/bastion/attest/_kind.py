"""Key algorithms, in a module of their own so the command line can name them without loading
cryptography."""

from __future__ import annotations

from enum import StrEnum


class KeyKind(StrEnum):
    ecdsa_p256 = "ecdsa-p256"
    ed25519 = "ed25519"
