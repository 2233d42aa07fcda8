"""The local signing key: what ``bastion build``, ``bastion attest refresh`` and ``bastion source build``
sign with when no ``--key`` is given, ``BASTION_HOME/keys/bastion.key`` (its public key beside it,
``bastion.pub``, is what ``verify`` uses when no key is given). It is made on first use, in cosign's
format, encrypted with ``BASTION_PASSWORD`` (or ``COSIGN_PASSWORD``), else with the empty password as
cosign allows (:func:`env_password`). Nothing here loads the signing stack until a key is made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["env_password", "local_key", "local_key_path"]


def local_key_path(home: Path) -> Path:
    """Where the local signing key is kept under ``home`` (``BASTION_HOME``); ``.pub`` beside it."""
    return home / "keys" / "bastion.key"


def env_password() -> bytes:
    """The password of keys Bastion makes and reads without asking: ``BASTION_PASSWORD``, else
    ``COSIGN_PASSWORD``, else the empty password."""
    from bastion.attest._signer import password_from_env

    return password_from_env() or b""


def local_key(home: Path, warn: Callable[[str], None], *, verifies: str) -> Path:
    """The local signing key's path, made now (ECDSA P-256) if there is none, with a warning naming
    the public key consumers must be given to verify ``verifies``."""
    path = local_key_path(home)
    if not path.is_file():
        from bastion.attest._keys import generate_key_pair, write_key_pair
        from bastion.attest._kind import KeyKind

        path.parent.mkdir(parents=True, exist_ok=True)
        files = write_key_pair(generate_key_pair(KeyKind.ecdsa_p256), path.with_suffix(""), env_password)
        warn(f"no --key given: created the signing key {files.private}; give consumers {files.public} "
             f"to verify {verifies}")  # fmt: skip
    return path
