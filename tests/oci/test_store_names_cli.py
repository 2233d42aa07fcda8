"""A store name means one image, the same one for every command (issue 17, item 20): a short name that
several repositories end with is refused listing them (exit 2), also when it looks like a registry
reference (it is not read from the registry instead); ``repo@digest`` must name a repository holding
that digest; an unambiguous short name still works. One function resolves them all
(:func:`bastion.oci.find_in_store`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.conftest import CliResult, run_cli
from tests.registry.conftest import make_image

from bastion.attest import ephemeral_signer, public_key_pem
from bastion.oci import Descriptor, Store, parse_index

# Commands that take a store name: each resolves it the same way.
COMMANDS = [
    ("inspect", "{image}"),
    ("sbom", "{image}"),
    ("attest", "list", "{image}"),
    ("verify", "{image}", "--key", "{key}"),
    ("export", "{image}", "oci-dir://{tmp}/out"),
    ("compliance", "{image}"),
]


def _timed(*args: str, home: Path) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home)
    assert time.monotonic() - started < 60, args
    assert result.code in (0, 1, 2), result.stderr  # never an internal error
    return result


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, dict[str, Descriptor]]:
    """A store holding ``bastion/nginx:stable`` and ``other/nginx:stable`` (different images), and two
    repositories whose names end with ``127.0.0.1:9/web:1`` (a registry-like name; nothing listens)."""
    home = tmp_path / "home"
    store = Store(home / "store")
    tagged = {
        name: store.tag(name, make_image(store, layer_sizes=(100,), seed=name))
        for name in (
            "bastion/nginx:stable",
            "other/nginx:stable",
            "a/127.0.0.1:9/web:1",
            "b/127.0.0.1:9/web:1",
        )
    }
    (tmp_path / "key.pub").write_bytes(public_key_pem(ephemeral_signer().public_key))
    return home, tagged


def _run(command: tuple[str, ...], image: str, home: Path) -> CliResult:
    tmp = home.parent
    return _timed(*(a.format(key=tmp / "key.pub", image=image, tmp=tmp) for a in command), home=home)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_ambiguous_short_name_lists_the_candidates(
    command: tuple[str, ...], home: tuple[Path, dict[str, Descriptor]]
) -> None:
    bastion_home, _ = home
    result = _run(command, "nginx:stable", bastion_home)
    assert result.code == 2
    assert "ambiguous" in result.stderr and "bastion/nginx:stable, other/nginx:stable" in result.stderr


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: c[0])
def test_a_registry_like_short_name_is_not_read_from_the_registry(
    command: tuple[str, ...], home: tuple[Path, dict[str, Descriptor]]
) -> None:
    bastion_home, _ = home
    result = _run(command, "127.0.0.1:9/web:1", bastion_home)
    assert result.code == 2
    assert "ambiguous" in result.stderr and "a/127.0.0.1:9/web:1, b/127.0.0.1:9/web:1" in result.stderr


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: c[0])
def test_a_digest_under_another_repository_is_not_that_repository(
    command: tuple[str, ...], home: tuple[Path, dict[str, Descriptor]]
) -> None:
    bastion_home, tagged = home
    digest = tagged["bastion/nginx:stable"].digest
    result = _run(command, f"other/nginx@{digest}", bastion_home)
    assert result.code == 2
    assert "unknown image" in result.stderr and f"{digest} is tagged bastion/nginx:stable" in result.stderr


def test_unambiguous_names_still_work(home: tuple[Path, dict[str, Descriptor]]) -> None:
    bastion_home, tagged = home
    index = tagged["bastion/nginx:stable"]
    store = Store(bastion_home / "store", create=False)
    platform_manifest = parse_index(store.read_blob(index.digest)).manifests[0].digest
    for name in (
        "bastion/nginx:stable",
        f"bastion/nginx@{index.digest}",
        f"nginx@{index.digest}",  # only bastion/nginx holds it
        f"bastion/nginx@{platform_manifest}",
        index.digest,
    ):
        result = _timed("inspect", name, home=bastion_home)
        assert result.code == 0, (name, result.stderr)
    listed = _timed("attest", "list", "a/127.0.0.1:9/web:1", home=bastion_home)
    assert listed.code == 0, listed.stderr
