"""Signers by URI, their algorithms (checked with cryptography directly), and the any-of-N verifier."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bastion.attest import (
    KeySigner,
    Verifier,
    ephemeral_signer,
    generate_key_pair,
    load_signer,
    password_from_env,
    write_key_pair,
)
from bastion.errors import InputError

DATA = b"DSSEv1 3 x/y 2 {}"


def test_ecdsa_p256_signs_sha256_der() -> None:
    signer = ephemeral_signer("ecdsa-p256")
    sig = signer.sign(DATA)
    decode_dss_signature(sig)  # DER, as cosign writes it (raises if not)
    public = signer.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(sig, DATA, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    ("curve", "digest"), [(ec.SECP384R1(), hashes.SHA384()), (ec.SECP521R1(), hashes.SHA512())]
)
def test_larger_curves_use_their_hash(curve: ec.EllipticCurve, digest: hashes.HashAlgorithm) -> None:
    signer = KeySigner(ec.generate_private_key(curve))
    sig = signer.sign(DATA)
    public = signer.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(sig, DATA, ec.ECDSA(digest))
    assert Verifier([public]).find_key(DATA, sig) is public
    # The same signature checked as if with SHA-256 would not verify: the hash really is the curve's.
    with pytest.raises(InvalidSignature):
        public.verify(sig, DATA, ec.ECDSA(hashes.SHA256()))


def test_ed25519_is_pure() -> None:
    signer = ephemeral_signer("ed25519")
    sig = signer.sign(DATA)
    assert len(sig) == 64
    public = signer.public_key
    assert isinstance(public, ed25519.Ed25519PublicKey)
    public.verify(sig, DATA)


def test_verifier_accepts_any_of_its_keys() -> None:
    a, b, c = ephemeral_signer(), ephemeral_signer("ed25519"), ephemeral_signer()
    verifier = Verifier([a.public_key, b.public_key])
    assert verifier.find_key(DATA, b.sign(DATA)) == b.public_key
    assert verifier.find_key(DATA, a.sign(DATA)) == a.public_key
    assert verifier.find_key(DATA, c.sign(DATA)) is None
    assert verifier.find_key(DATA + b"!", a.sign(DATA)) is None
    assert verifier.find_key(DATA, b"not der") is None
    with pytest.raises(InputError, match="no public key"):
        Verifier([])


def test_file_signer_by_path_and_uri(tmp_path: Path) -> None:
    key = generate_key_pair()
    files = write_key_pair(key, tmp_path / "k", b"pw")
    asked: list[int] = []

    def password() -> bytes:
        asked.append(1)
        return b"pw"

    for ref in (str(files.private), f"file://{files.private}"):
        signer = load_signer(ref, password)
        assert Verifier([key.public_key()]).find_key(DATA, signer.sign(DATA)) is not None
    assert len(asked) == 2
    with pytest.raises(InputError, match="wrong password"):
        load_signer(str(files.private), lambda: b"nope")
    with pytest.raises(InputError, match="no such key file"):
        load_signer(str(tmp_path / "missing.key"), password)
    with pytest.raises(InputError, match="password is needed"):
        load_signer(str(files.private))


def test_ephemeral_and_unsupported_schemes() -> None:
    def never() -> bytes:
        raise AssertionError("no password for an ephemeral key")

    assert isinstance(load_signer("ephemeral://", never).public_key, ec.EllipticCurvePublicKey)
    assert isinstance(load_signer("ephemeral://ed25519", never).public_key, ed25519.Ed25519PublicKey)
    with pytest.raises(InputError, match="awskms:// keys are not supported yet") as info:
        load_signer("awskms:///arn:aws:kms:eu-west-1:1:key/abc", never)
    assert info.value.exit_code == 2
    with pytest.raises(InputError, match="hashivault:// keys are not supported yet"):
        load_signer("hashivault://transit-key", never)
    with pytest.raises(InputError, match="unknown key reference scheme 'ftp'"):
        load_signer("ftp://host/key", never)


def test_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASTION_PASSWORD", raising=False)
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    assert password_from_env() is None
    monkeypatch.setenv("COSIGN_PASSWORD", "from-cosign")
    assert password_from_env() == b"from-cosign"
    monkeypatch.setenv("BASTION_PASSWORD", "")
    assert password_from_env() == b""  # set but empty: the empty password, as cosign
    monkeypatch.setenv("BASTION_PASSWORD", "from-bastion")
    assert password_from_env() == b"from-bastion"
