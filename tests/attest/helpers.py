"""Shared helpers for the attest tests: the real third-party bundles and an independent PAE."""

from __future__ import annotations

from tests.conftest import TEST_DATA

INTEROP = TEST_DATA / "sigstore-interop"
MODEL_SIGNING_BUNDLES = sorted(INTEROP.glob("model-signing-*-p384.sigstore.json"))
MODEL_SIGNING_PUB = INTEROP / "model-signing-p384-pub.pem"
SIGSTORE_GO_KEYLESS = INTEROP / "sigstore-go-dsse-keyless.sigstore.json"
SIGSTORE_GO_2SIGS = INTEROP / "sigstore-go-dsse-2sigs.sigstore.json"


def hand_pae(payload_type: str, payload: bytes) -> bytes:
    """PAE written out from protocol.md with plain concatenation, independent of bastion.attest.pae."""
    t = payload_type.encode("utf-8")
    return (
        b"DSSEv1"
        + b" "
        + str(len(t)).encode()
        + b" "
        + t
        + b" "
        + str(len(payload)).encode()
        + b" "
        + payload
    )
