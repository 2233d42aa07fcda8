"""The formats users write are documented with complete examples (issue 17, item 19), and those
examples are what the real loaders accept: the policy in ``docs/policy.md`` through ``bastion verify
--policy`` (it passes on an image whose signed provenance meets it, and fails closed on one that does
not), the feed configuration in ``docs/vuln-feeds.md`` through ``bastion.vuln.load_config``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, CliResult, run_cli
from tests.registry.conftest import make_image

from bastion.attest import (
    Subject,
    attach_bundle,
    ephemeral_signer,
    make_statement,
    public_key_pem,
    resolve_predicate_type,
    sign_statement,
)
from bastion.oci import Store, parse_index
from bastion.vuln import load_config

IMAGE = "bastion/tiny:1"


def _example(doc: str, language: str) -> str:
    """The first ``language`` code block of ``docs/<doc>``."""
    text = (REPO_ROOT / "docs" / doc).read_text()
    found = re.search(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert found is not None, f"docs/{doc} has no {language} example"
    return found.group(1)


def _signed_home(tmp_path: Path, provenance: dict[str, object]) -> tuple[Path, Path]:
    """(BASTION_HOME, policy file): IMAGE with SPDX, CycloneDX and ``provenance`` signed on each
    platform by the key the documented policy names (``keys/release.pub`` next to it)."""
    home = tmp_path / "home"
    store = Store(home / "store")
    index = store.tag(IMAGE, make_image(store, layer_sizes=(100,), seed="policy"))
    signer = ephemeral_signer()
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub").write_bytes(public_key_pem(signer.public_key))
    predicates = {resolve_predicate_type("spdx"): {"spdx": 1}, resolve_predicate_type("cyclonedx"): {"cdx": 1},
                  resolve_predicate_type("provenance"): provenance}  # fmt: skip
    for desc in parse_index(store.read_blob(index.digest)).manifests:
        for kind, predicate in predicates.items():
            statement = make_statement([Subject.for_digest("bastion/tiny", desc.digest)], kind, predicate)
            bundle = sign_statement(statement, signer)
            attach_bundle(store, desc, bundle, predicate_type=kind, created="2030-01-01T00:00:00Z")
    policy = tmp_path / "policy.yaml"
    policy.write_text(_example("policy.md", "yaml"))
    return home, policy


def _provenance(*, locked: bool) -> dict[str, object]:
    return {
        "buildDefinition": {
            "externalParameters": {
                "locked": locked,
                "variant": "runtime",
                "source": {"repository": "https://git.example.org/platform/images"},
            }
        },
        "runDetails": {"builder": {"id": "https://bastion.invalid/slsa/builders/local"}},
    }


def _verify(home: Path, policy: Path) -> CliResult:
    started = time.monotonic()
    result = run_cli("verify", IMAGE, "--policy", str(policy), home=home)
    assert time.monotonic() - started < 60
    assert result.code in (0, 1, 2), result.stderr  # never an internal error
    return result


def test_the_documented_policy_passes_an_image_that_meets_it(tmp_path: Path) -> None:
    home, policy = _signed_home(tmp_path, _provenance(locked=True))
    result = _verify(home, policy)
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.count("holds") == 2 * 4  # four conditions on two platforms


def test_the_documented_policy_fails_closed_on_one_that_does_not(tmp_path: Path) -> None:
    home, policy = _signed_home(tmp_path, _provenance(locked=False))
    result = _verify(home, policy)
    assert result.code == 1
    assert "buildDefinition.externalParameters.locked == True: FAILED" in result.stdout


def test_the_documented_feed_configuration_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "vuln.toml"
    config.write_text(_example("vuln-feeds.md", "toml"))
    monkeypatch.setenv("BASTION_VULN_CONFIG", str(config))
    monkeypatch.delenv("BASTION_VULN_MAX_AGE_HOURS", raising=False)
    loaded = load_config(tmp_path)
    assert loaded.max_age_hours == 12
    assert len(loaded.feeds) == 4 and loaded.feeds[-1].startswith("http://127.0.0.1:")


def test_the_stale_sentence_is_gone() -> None:
    assert "comes later" not in (REPO_ROOT / "docs" / "attestations.md").read_text()
