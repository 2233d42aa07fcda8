"""Hostile policies through `bastion verify --policy`: a policy that checks nothing, conditions compared
type-strictly, and YAML built to hang or crash the loader (aliases, deep nesting). No network."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.conftest import CliResult, run_cli
from tests.registry.conftest import make_image

from bastion.attest import Subject, attach_bundle, ephemeral_signer, make_statement, public_key_pem
from bastion.attest import sign_statement as sign
from bastion.oci import Store, parse_index, put_index

PROVENANCE = "https://slsa.dev/provenance/v1"
PREDICATE = {"buildDefinition": {"externalParameters": {"locked": True, "attempts": 1}}}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A layout whose amd64 image carries a signed provenance statement; the reference and public key."""
    tmp = tmp_path_factory.mktemp("policy")
    store = Store(tmp / "layout")
    index = make_image(store, layer_sizes=(500,), seed="policy")
    store.tag("img:1", index)
    amd64 = next(
        d for d in parse_index(store.read_blob(index.digest)).manifests if d.platform.architecture == "amd64"
    )
    signer = ephemeral_signer()
    pub = tmp / "key.pub"
    pub.write_bytes(public_key_pem(signer.public_key))
    statement = make_statement([Subject.for_digest("img", amd64.digest)], PROVENANCE, PREDICATE)
    bundle = sign(statement, signer)
    attach_bundle(store, amd64, bundle, predicate_type=PROVENANCE, created="2030-01-01T00:00:00Z")
    return f"oci-dir://{store.root}:img:1", pub


def _verify(tmp_path: Path, ref: str, pub: Path, policy: str) -> tuple[CliResult, float]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    started = time.monotonic()
    result = run_cli(
        "verify", ref, "--key", str(pub), "--platform", "linux/amd64", "--policy", str(path),
        home=tmp_path / "home",
    )  # fmt: skip
    assert "internal error" not in result.stderr, result.stderr
    return result, time.monotonic() - started


def test_the_signed_statement_verifies(tmp_path: Path, signed: tuple[str, Path]) -> None:
    policy = "required: [provenance]\nconditions:\n  - {predicate: provenance, path: buildDefinition.externalParameters.locked, equals: true}\n"
    result, _ = _verify(tmp_path, *signed, policy)
    assert result.code == 0, result.stdout + result.stderr


def test_a_policy_that_checks_nothing_is_refused(tmp_path: Path, signed: tuple[str, Path]) -> None:
    result, _ = _verify(tmp_path, *signed, "required: []\n")
    assert result.code == 2, result.stdout + result.stderr
    assert "policy.yaml" in result.stderr and "the policy checks nothing" in result.stderr


def test_an_image_with_no_platform_to_check_is_not_verified(tmp_path: Path, signed: tuple[str, Path]) -> None:
    store = Store(tmp_path / "empty")
    store.tag("img:1", put_index(store, []))
    path = tmp_path / "policy.yaml"
    path.write_text("required: [provenance]\n")
    _, pub = signed
    result = run_cli(
        "verify", f"oci-dir://{store.root}:img:1", "--key", str(pub), "--policy", str(path),
        home=tmp_path / "home",
    )  # fmt: skip
    assert result.code == 2, result.stdout + result.stderr
    assert "holds no image manifest" in result.stderr


@pytest.mark.parametrize("expected", ["1", "1.0", "'true'", "[true]"])
def test_equals_compares_types(tmp_path: Path, signed: tuple[str, Path], expected: str) -> None:
    # Python's 1 == True (and 1.0 == True) made `equals: 1` hold for `true`.
    policy = (
        "required: [provenance]\nconditions:\n"
        f"  - {{predicate: provenance, path: buildDefinition.externalParameters.locked, equals: {expected}}}\n"
    )
    result, _ = _verify(tmp_path, *signed, policy)
    assert result.code == 1, result.stdout + result.stderr
    assert "externalParameters.locked is True (bool)" in result.stdout + result.stderr


def test_one_of_compares_types(tmp_path: Path, signed: tuple[str, Path]) -> None:
    policy = (
        "required: [provenance]\nconditions:\n"
        "  - {predicate: provenance, path: buildDefinition.externalParameters.attempts, one-of: [true]}\n"
    )
    result, _ = _verify(tmp_path, *signed, policy)
    assert result.code == 1, result.stdout + result.stderr
    assert "attempts is 1 (int)" in result.stdout + result.stderr


BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        # 566 bytes expanding to 9**9 nodes under `equals:`
        (
            "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + BOMB
            + "required: [provenance]\nconditions:\n  - {predicate: provenance, path: x, equals: *i}\n",
            "expands to more than",
        ),
        ("required: " + "[" * 5_000 + "\n", "nests deeper than 64 levels"),
    ],
    ids=["alias-bomb", "deep-nesting"],
)
def test_hostile_yaml_is_refused_in_bounded_time(
    tmp_path: Path, signed: tuple[str, Path], policy: str, message: str
) -> None:
    result, elapsed = _verify(tmp_path, *signed, policy)
    assert result.code == 2, result.stdout + result.stderr
    assert "policy.yaml:" in result.stderr and message in result.stderr
    assert elapsed < 30
