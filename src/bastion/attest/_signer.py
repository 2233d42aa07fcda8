"""Signers chosen by URI, and a verifier holding the trusted public keys.

Algorithms follow sigstore's ``PublicKeyDetails`` (protobuf-specs ``sigstore_common.proto``): ECDSA
signs a SHA-2 digest fixed by the curve (P-256 → SHA-256, P-384 → SHA-384, P-521 → SHA-512) and the
signature is ASN.1 DER, as cosign writes it; Ed25519 is pure Ed25519 over the message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bastion.attest._keys import (
    PrivateKey,
    PublicKey,
    generate_key_pair,
    key_hint,
    load_private_key,
    load_public_key,
)
from bastion.attest._kind import KeyKind
from bastion.errors import InputError

PasswordSource = Callable[[], bytes]
"""Called only when a key file must be decrypted, so a prompt appears only when needed."""

PASSWORD_ENV_VARS = ("BASTION_PASSWORD", "COSIGN_PASSWORD")

# Key references cosign understands and we do not (yet): named so the error says "not supported yet"
# rather than "unknown".
_KMS_SCHEMES = frozenset({"awskms", "gcpkms", "azurekms", "hashivault", "k8s", "pkcs11", "gitlab"})


class Signer(Protocol):
    """Anything that signs bytes with one key."""

    @property
    def public_key(self) -> PublicKey: ...

    @property
    def key_id(self) -> str:
        """An unauthenticated hint naming the key (never used for trust decisions)."""
        ...

    def sign(self, data: bytes) -> bytes: ...


def hash_for_curve(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    """sigstore PublicKeyDetails: PKIX_ECDSA_P256_SHA_256, PKIX_ECDSA_P384_SHA_384, PKIX_ECDSA_P521_SHA_512."""
    match curve.name:
        case "secp256r1":
            return hashes.SHA256()
        case "secp384r1":
            return hashes.SHA384()
        case "secp521r1":
            return hashes.SHA512()
    raise InputError(f"unsupported curve {curve.name}")


@dataclass(frozen=True)
class KeySigner:
    """A signer over a private key held in memory (read from a file, or ephemeral)."""

    private_key: PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_hint(self.private_key)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hash_for_curve(self.private_key.curve)))


def verify_signature(key: PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(hash_for_curve(key.curve)))
    except (InvalidSignature, ValueError):  # ValueError: a signature that is not DER at all
        return False
    return True


class Verifier:
    """The trusted public keys: a signature is accepted when any one of them verifies it."""

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self.keys: tuple[PublicKey, ...] = tuple(keys)
        if not self.keys:
            raise InputError("no public key to verify with")

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> Verifier:
        return cls(load_public_key(path) for path in paths)

    def find_key(self, data: bytes, signature: bytes) -> PublicKey | None:
        """The first trusted key that verifies ``signature`` over ``data``, or None."""
        for key in self.keys:
            if verify_signature(key, data, signature):
                return key
        return None


def ephemeral_signer(kind: KeyKind | str = KeyKind.ecdsa_p256) -> KeySigner:
    """A signer whose key lives only in memory (tests, throwaway signatures)."""
    return KeySigner(generate_key_pair(kind))


def password_from_env() -> bytes | None:
    """BASTION_PASSWORD, else COSIGN_PASSWORD (set but empty means the empty password, as in cosign)."""
    for name in PASSWORD_ENV_VARS:
        value = os.environ.get(name)
        if value is not None:
            return os.fsencode(value)
    return None


def load_signer(ref: str, password: PasswordSource | None = None) -> Signer:
    """The signer a key reference names.

    ``file://PATH`` or a bare path: a cosign-format encrypted key file, decrypted with ``password()``;
    ``ephemeral://[ecdsa-p256|ed25519]``: a new in-memory key. KMS references are refused for now.
    """
    scheme, sep, rest = ref.partition("://")
    if not sep:
        scheme, rest = "file", ref
    match scheme:
        case "file":
            path = Path(rest)
            if not rest:
                raise InputError("empty key path", where=ref)
            if password is None:
                raise InputError("a password is needed to decrypt the key", where=str(path))
            if not path.is_file():
                raise InputError("no such key file", where=str(path))
            return KeySigner(load_private_key(path, password()))
        case "ephemeral":
            return ephemeral_signer(rest or KeyKind.ecdsa_p256)
        case _ if scheme in _KMS_SCHEMES:
            raise InputError(
                f"{scheme}:// keys are not supported yet",
                where=ref,
                hint="use an encrypted key file (bastion keygen)",
            )
    raise InputError(
        f"unknown key reference scheme {scheme!r}",
        where=ref,
        hint="use a key file path, file://PATH or ephemeral://",
    )
