"""Signing keys in cosign's formats.

Private key (what ``cosign generate-key-pair`` writes, sigstore/cosign ``pkg/cosign/keys.go``): a PEM
block ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign: ``ENCRYPTED COSIGN PRIVATE KEY``) whose body is
the JSON document of go-securesystemslib's ``encrypted`` package::

    {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": <base64, 32 bytes>},
     "cipher": {"name": "nacl/secretbox", "nonce": <base64, 24 bytes>},
     "ciphertext": <base64 of secretbox(PKCS#8 DER of the key)>}

The secretbox key is scrypt(password, salt, N, r, p) truncated to 32 bytes; base64 is the standard
alphabet with padding (Go's encoding/json for ``[]byte``). Public key: PEM ``PUBLIC KEY`` (SPKI DER).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict, ValidationError

from bastion._atomic import atomic_file
from bastion.attest._kind import KeyKind
from bastion.attest._pem import pem_block, pem_encode
from bastion.errors import InputError

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

SIGSTORE_PRIVATE_KEY_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PRIVATE_KEY_PEM = "ENCRYPTED COSIGN PRIVATE KEY"
PUBLIC_KEY_PEM = "PUBLIC KEY"

# Curves we sign and verify with; the hash for each is fixed by the curve (see _signer.py).
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")

_SALT_SIZE = 32  # go-securesystemslib encrypted: saltSize
_BOX_KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE  # 32, boxKeySize
_BOX_NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24, boxNonceSize
# We write the legacy parameters (N=2^15): every cosign release reads them, while the older
# go-securesystemslib accepts nothing else. We read the three sets the current package accepts and
# refuse anything else, as it does (CheckParams), so a tampered file cannot make us burn CPU or memory.
_WRITE_PARAMS = (32768, 8, 1)
_ACCEPTED_PARAMS = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})


@dataclass(frozen=True)
class KeyPairFiles:
    private: Path
    public: Path


class _ScryptParams(BaseModel):
    model_config = ConfigDict(frozen=True)
    N: int
    r: int
    p: int


class _Kdf(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    params: _ScryptParams
    salt: str


class _Cipher(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    nonce: str


class _Encrypted(BaseModel):
    model_config = ConfigDict(frozen=True)
    kdf: _Kdf
    cipher: _Cipher
    ciphertext: str


def generate_key_pair(kind: KeyKind | str = KeyKind.ecdsa_p256) -> PrivateKey:
    """A new private key; ECDSA P-256 is cosign's default."""
    try:
        kind = KeyKind(kind)
    except ValueError:
        raise InputError(
            f"unknown key kind {kind!r}", hint=f"use one of {', '.join(k.value for k in KeyKind)}"
        ) from None
    if kind is KeyKind.ed25519:
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def public_key_pem(key: PrivateKey | PublicKey) -> bytes:
    public = (
        key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) else key
    )
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hint(key: PrivateKey | PublicKey) -> str:
    """The bundle's ``publicKey.hint``: base64 of the SHA-256 of the DER SPKI (as sigstore-go and cosign)."""
    public = (
        key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) else key
    )
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _box_key(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=_BOX_KEY_SIZE, n=n, r=r, p=p).derive(password)


def encrypt_private_key(key: PrivateKey, password: bytes) -> bytes:
    """The PEM text of ``key`` encrypted as cosign does (see the module docstring)."""
    _check_private_key(key, where="private key")
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt = secrets.token_bytes(_SALT_SIZE)
    nonce = secrets.token_bytes(_BOX_NONCE_SIZE)
    n, r, p = _WRITE_PARAMS
    # PyNaCl's SecretBox is NaCl crypto_secretbox: the output is the 16-byte Poly1305 tag followed by
    # the ciphertext, the same layout as Go's secretbox.Seal; .ciphertext drops the prepended nonce.
    sealed = nacl.secret.SecretBox(_box_key(password, salt, n, r, p)).encrypt(der, nonce).ciphertext
    document = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": _b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(sealed),
    }
    return pem_encode(SIGSTORE_PRIVATE_KEY_PEM, json.dumps(document, separators=(",", ":")).encode())


def decrypt_private_key(data: bytes, password: bytes, *, where: str = "private key") -> PrivateKey:
    """Read a cosign-format encrypted private key (either PEM label)."""
    _, body = pem_block(data, (SIGSTORE_PRIVATE_KEY_PEM, COSIGN_PRIVATE_KEY_PEM), where=where)
    der = decrypt_document(body, password, where=where)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as exc:
        raise InputError(f"the decrypted key is not a PKCS#8 private key: {exc}", where=where) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise InputError(f"unsupported private key type {type(key).__name__}", hint=_SUPPORTED, where=where)
    _check_private_key(key, where=where)
    return key


def decrypt_document(body: bytes, password: bytes, *, where: str = "private key") -> bytes:
    """The plaintext of one go-securesystemslib ``encrypted`` JSON document (the PEM block's body)."""
    try:
        doc = _Encrypted.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InputError(f"encrypted key document: {field}: {first['msg']}", where=where) from None
    # go-securesystemslib encrypted.Decrypt: only scrypt + nacl/secretbox exist.
    if doc.kdf.name != "scrypt":
        raise InputError(f"unknown key derivation {doc.kdf.name!r} (expected scrypt)", where=where)
    if doc.cipher.name != "nacl/secretbox":
        raise InputError(f"unknown cipher {doc.cipher.name!r} (expected nacl/secretbox)", where=where)
    params = (doc.kdf.params.N, doc.kdf.params.r, doc.kdf.params.p)
    # encrypted.CheckParams: refuse parameters outside the known sets (a DoS guard).
    if params not in _ACCEPTED_PARAMS:
        raise InputError(
            f"unsupported scrypt parameters N={params[0]} r={params[1]} p={params[2]}", where=where
        )
    salt = _unb64(doc.kdf.salt, "kdf.salt", where)
    nonce = _unb64(doc.cipher.nonce, "cipher.nonce", where)
    sealed = _unb64(doc.ciphertext, "ciphertext", where)
    if len(nonce) != _BOX_NONCE_SIZE:
        raise InputError(f"cipher.nonce is {len(nonce)} bytes, expected {_BOX_NONCE_SIZE}", where=where)
    try:
        return bytes(nacl.secret.SecretBox(_box_key(password, salt, *params)).decrypt(sealed, nonce))
    except nacl.exceptions.CryptoError:
        from bastion.attest._signer import password_from_env  # _signer imports this module

        if not password and password_from_env() is None:
            # Nothing in the environment and no terminal to ask on (or nothing typed): the empty
            # password, which cosign allows a key to be made with, was tried and is not this key's.
            raise InputError(
                "no password was given for the encrypted private key",
                where=where,
                hint="set BASTION_PASSWORD or COSIGN_PASSWORD to its password",
            ) from None
        raise InputError(
            "wrong password for the private key (or the key file is damaged)",
            where=where,
            hint="the password is read from BASTION_PASSWORD, else COSIGN_PASSWORD, else asked for",
        ) from None


def load_private_key(path: Path, password: bytes) -> PrivateKey:
    return decrypt_private_key(_read(path), password, where=str(path))


def parse_public_key(data: bytes, *, where: str = "public key") -> PublicKey:
    """A PEM ``PUBLIC KEY`` (SPKI); explanatory text around the block is ignored."""
    _, der = pem_block(data, (PUBLIC_KEY_PEM,), where=where)
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise InputError(f"not a valid public key: {exc}", where=where) from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in SUPPORTED_CURVES:
        return key
    name = key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
    raise InputError(f"unsupported public key type {name}", hint=_SUPPORTED, where=where)


def load_public_key(path: Path) -> PublicKey:
    return parse_public_key(_read(path), where=str(path))


def write_key_pair(
    key: PrivateKey, prefix: Path, password: bytes | Callable[[], bytes], *, overwrite: bool = False
) -> KeyPairFiles:
    """Write ``<prefix>.key`` (encrypted, mode 0600) and ``<prefix>.pub``; refuse to replace files unless
    ``overwrite`` (checked before ``password`` is asked for, when it is a callable). Each file appears
    whole or not at all."""
    files = KeyPairFiles(prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub"))
    if not overwrite:
        for path in (files.private, files.public):
            if path.exists() or path.is_symlink():
                raise InputError(
                    "already exists: refusing to overwrite a key",
                    where=str(path),
                    hint="use --force to replace it",
                )
    encrypted = encrypt_private_key(key, password() if callable(password) else password)
    _write_whole(files.private, encrypted, 0o600, overwrite=overwrite)
    _write_whole(files.public, public_key_pem(key), 0o644, overwrite=overwrite)
    return files


_SUPPORTED = "supported: ECDSA P-256, P-384, P-521 and Ed25519"


def _check_private_key(key: PrivateKey, *, where: str) -> None:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in SUPPORTED_CURVES:
        raise InputError(f"unsupported curve {key.curve.name}", hint=_SUPPORTED, where=where)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, field: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise InputError(f"{field} is not valid base64", where=where) from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read key file: {exc.strerror}", where=str(path)) from None


def _write_whole(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    try:
        # The temp file is 0600 until complete; without overwrite the rename is a link, which fails if
        # path appeared meanwhile: a key is never clobbered.
        with atomic_file(path, mode=mode, exclusive=not overwrite, prefix=f".{path.name}.") as out:
            out.write(data)
    except FileExistsError:
        raise InputError("already exists: refusing to overwrite a key", where=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot write key file: {exc.strerror}", where=str(path)) from None
