"""Cosign-format keys: written, read, and read when written by someone else (independently built here
with PyNaCl + hashlib.scrypt, and go-securesystemslib's own published ciphertexts)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import textwrap
from pathlib import Path

import nacl.secret
import nacl.utils
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bastion.attest import (
    KeyKind,
    decrypt_private_key,
    generate_key_pair,
    key_hint,
    load_private_key,
    load_public_key,
    parse_public_key,
    public_key_pem,
    write_key_pair,
)
from bastion.attest._keys import decrypt_document
from bastion.errors import ExitCode, InputError
from tests.attest.helpers import MODEL_SIGNING_PUB

PASSWORD = b"correct horse battery staple"


def spki(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def cosign_format_key(der: bytes, password: bytes, *, label: str = "ENCRYPTED SIGSTORE PRIVATE KEY") -> bytes:
    """An encrypted key file built from the documented format alone (cosign keys.go + go-securesystemslib
    encrypted): scrypt(N=32768, r=8, p=1) → 32-byte secretbox key, 32-byte salt, 24-byte nonce."""
    salt = nacl.utils.random(32)
    nonce = nacl.utils.random(24)
    box_key = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)
    sealed = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": 32768, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    body = "\n".join(textwrap.wrap(base64.b64encode(json.dumps(doc).encode()).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def pkcs8(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("label", ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"])
@pytest.mark.parametrize(
    "make", [lambda: ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate]
)
def test_reads_independently_built_cosign_key(tmp_path: Path, label: str, make: object) -> None:
    key = make()  # type: ignore[operator]
    path = tmp_path / "cosign.key"
    path.write_bytes(cosign_format_key(pkcs8(key), PASSWORD, label=label))
    loaded = load_private_key(path, PASSWORD)
    assert spki(loaded.public_key()) == spki(key.public_key())


# go-securesystemslib encrypted/encrypted_test.go: ciphertexts written by the Go package cosign uses,
# passphrase "supersecret". TestDecrypt's (first) holds "reallyimportant" itself; kdfVectors (the other
# three: N = 2^15, 2^16, 2^17) hold it JSON-marshalled by encrypted.Marshal, i.e. a base64 JSON string.
GO_VECTORS = [
    '{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}',
    '{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}',
    '{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}',
    '{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}',
]


@pytest.mark.parametrize("index", range(len(GO_VECTORS)))
def test_decrypts_go_securesystemslib_ciphertexts(index: int) -> None:
    vector = GO_VECTORS[index]
    plain = decrypt_document(vector.encode(), b"supersecret")
    assert (plain if index == 0 else base64.b64decode(json.loads(plain))) == b"reallyimportant"
    # Whitespace in the JSON document does not matter.
    assert decrypt_document(json.dumps(json.loads(vector), indent=2).encode(), b"supersecret") == plain


def test_go_vector_wrong_password_and_unsupported_params() -> None:
    with pytest.raises(InputError, match="wrong password"):
        decrypt_document(GO_VECTORS[0].encode(), b"supersecreT")
    # encrypted_test.go TestUnsupportedKDFParameters: refused before any scrypt work.
    unsupported = '{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}'
    with pytest.raises(InputError, match="unsupported scrypt parameters N=99"):
        decrypt_document(unsupported.encode(), b"supersecret")
    doc = json.loads(GO_VECTORS[0])
    doc["cipher"]["name"] = "aes-gcm"
    with pytest.raises(InputError, match="unknown cipher 'aes-gcm'"):
        decrypt_document(json.dumps(doc).encode(), b"supersecret")


@pytest.mark.parametrize("kind", list(KeyKind))
def test_written_key_pair_follows_the_format(tmp_path: Path, kind: KeyKind) -> None:
    key = generate_key_pair(kind)
    files = write_key_pair(key, tmp_path / "bastion", PASSWORD)
    assert (files.private.name, files.public.name) == ("bastion.key", "bastion.pub")
    assert stat.S_IMODE(files.private.stat().st_mode) == 0o600

    # Read the private key file by hand, following the documented format only.
    text = files.private.read_text()
    match = re.fullmatch(
        r"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n((?:[A-Za-z0-9+/=]{1,64}\n)+)"
        r"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        text,
    )
    assert match, text
    doc = json.loads(base64.b64decode("".join(match.group(1).split())))
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert doc["cipher"]["name"] == "nacl/secretbox"
    salt, nonce = base64.b64decode(doc["kdf"]["salt"]), base64.b64decode(doc["cipher"]["nonce"])
    assert (len(salt), len(nonce)) == (32, 24)
    box_key = hashlib.scrypt(PASSWORD, salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)
    der = nacl.secret.SecretBox(box_key).decrypt(base64.b64decode(doc["ciphertext"]), nonce)
    independent = serialization.load_der_private_key(der, password=None)
    assert spki(independent.public_key()) == spki(key.public_key())  # type: ignore[arg-type]

    # The public key file is a plain SPKI PEM any tool reads.
    public = serialization.load_pem_public_key(files.public.read_bytes())
    assert spki(public) == spki(key.public_key())  # type: ignore[arg-type]
    assert files.public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")

    # And our own loaders round-trip both.
    assert spki(load_private_key(files.private, PASSWORD).public_key()) == spki(key.public_key())
    assert spki(load_public_key(files.public)) == spki(key.public_key())


def test_wrong_password_is_an_input_error(tmp_path: Path) -> None:
    files = write_key_pair(generate_key_pair(), tmp_path / "k", PASSWORD)
    with pytest.raises(InputError, match="wrong password") as info:
        load_private_key(files.private, b"not it")
    assert info.value.exit_code == ExitCode.USAGE
    assert str(files.private) in info.value.diagnostic()


def test_tampered_ciphertext_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = cosign_format_key(pkcs8(key), PASSWORD)
    body = "".join(pem.decode().splitlines()[1:-1])
    doc = json.loads(base64.b64decode(body))
    sealed = bytearray(base64.b64decode(doc["ciphertext"]))
    sealed[20] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    tampered = b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + base64.b64encode(
        json.dumps(doc).encode()
    )
    tampered += b"\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    with pytest.raises(
        InputError, match="wrong password for the private key \\(or the key file is damaged\\)"
    ):
        decrypt_private_key(tampered, PASSWORD)


def test_refuses_to_overwrite_and_asks_no_password(tmp_path: Path) -> None:
    first = write_key_pair(generate_key_pair(), tmp_path / "k", PASSWORD)
    before = first.private.read_bytes()

    def never() -> bytes:
        raise AssertionError("password asked for although nothing will be written")

    with pytest.raises(InputError, match="refusing to overwrite"):
        write_key_pair(generate_key_pair(), tmp_path / "k", never)
    assert first.private.read_bytes() == before
    # Only the public half present also blocks (a key pair is never half replaced).
    first.private.unlink()
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_key_pair(generate_key_pair(), tmp_path / "k", never)
    assert not first.private.exists()

    second = write_key_pair(generate_key_pair(), tmp_path / "k", lambda: PASSWORD, overwrite=True)
    assert second.private.read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_public_key_with_surrounding_text_and_types() -> None:
    # The model-signing key file starts with certtool's description before the PEM block.
    assert not MODEL_SIGNING_PUB.read_bytes().startswith(b"-----BEGIN")
    key = load_public_key(MODEL_SIGNING_PUB)
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"

    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InputError, match="unsupported public key type RSAPublicKey"):
        parse_public_key(rsa_pem)
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(InputError, match="unsupported public key type secp256k1"):
        parse_public_key(public_key_pem(k1))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="expected a PEM block of type PUBLIC KEY, found no PEM block"):
        parse_public_key(b"hello")


def test_key_hint_is_base64_sha256_of_spki() -> None:
    key = generate_key_pair()
    expected = base64.b64encode(hashlib.sha256(spki(key.public_key())).digest()).decode()
    assert key_hint(key) == key_hint(key.public_key()) == expected


def test_unknown_kind() -> None:
    with pytest.raises(InputError, match="unknown key kind 'rsa'"):
        generate_key_pair("rsa")
