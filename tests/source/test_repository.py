"""Bastion's APT repository: what it publishes verifies with gpgv against the key it publishes, and a
definition consumes it through the same InRelease → Packages → .deb chain as Debian's archive (``bastion
lock``). Offline: a .deb made here with dpkg-deb."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.errors import InputError, InternalError
from bastion.source import SUITE, LocalRepository
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(
    shutil.which("gpg") is None or shutil.which("dpkg-deb") is None, reason="needs gpg and dpkg-deb"
)


def _deb(tmp: Path, text: str = "built by Bastion\n") -> Path:
    tree = tmp / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "share" / "tiny").mkdir(parents=True)
    (tree / "usr" / "share" / "tiny" / "note.txt").write_text(text)
    (tree / "DEBIAN" / "control").write_text(
        "Package: tiny-bastion\nVersion: 1.0-1+bastion1\nArchitecture: all\nMaintainer: Bastion <builder@bastion.invalid>\n"
        "Description: a package published by Bastion's repository tests\n"
    )
    out = tmp / "tiny-bastion_1.0-1+bastion1_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(tree)
    return out


def test_published_inrelease_verifies_and_a_definition_locks_from_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repository = LocalRepository(home / "repository", home / "keys" / "apt")
    published = repository.publish("tiny-bastion", [_deb(tmp_path)])
    assert [p.name for p in published] == ["tiny-bastion_1.0-1+bastion1_all.deb"]
    assert (home / "keys" / "apt").stat().st_mode & 0o077 == 0
    inrelease = home / "repository" / "dists" / SUITE / "InRelease"
    verified = subprocess.run(
        ["gpgv", "--keyring", str(repository.keyring), str(inrelease)], capture_output=True, check=False
    )
    assert verified.returncode == 0, verified.stderr
    definition = tmp_path / "tiny.yaml"
    definition.write_text(
        "name: tiny\nplatforms: [linux/amd64]\ncontents:\n"
        f"  repositories: [{{uri: '{repository.uri}', suites: [{SUITE}], components: [main]}}]\n"
        f"  keyring: {repository.keyring}\n  packages: [tiny-bastion]\n"
    )
    result = run_cli("lock", str(definition), home=home)
    assert result.code == 0, result.stderr
    lock = json.loads(definition.with_suffix(".lock.json").read_text())
    text = json.dumps(lock)
    assert "tiny-bastion" in text and "1.0-1+bastion1" in text and published[0].sha256 in text


def test_a_republished_name_with_other_bytes_is_refused(tmp_path: Path) -> None:
    repository = LocalRepository(tmp_path / "repository", tmp_path / "keys")
    repository.publish("tiny-bastion", [_deb(tmp_path / "one")])
    before = (tmp_path / "repository" / "dists" / SUITE / "InRelease").read_bytes()
    with pytest.raises(InputError, match="already published with other bytes"):
        repository.publish("tiny-bastion", [_deb(tmp_path / "two", "other bytes\n")])
    assert (tmp_path / "repository" / "dists" / SUITE / "InRelease").read_bytes() == before


def test_a_signature_by_another_key_does_not_verify(tmp_path: Path) -> None:
    first = LocalRepository(tmp_path / "a" / "repository", tmp_path / "a" / "keys")
    second = LocalRepository(tmp_path / "b" / "repository", tmp_path / "b" / "keys")
    first.publish("tiny-bastion", [_deb(tmp_path / "one")])
    second.publish("tiny-bastion", [_deb(tmp_path / "two")])
    inrelease = tmp_path / "a" / "repository" / "dists" / SUITE / "InRelease"
    verified = subprocess.run(
        ["gpgv", "--keyring", str(second.keyring), str(inrelease)], capture_output=True, check=False
    )
    assert verified.returncode != 0


def test_an_image_provenance_names_the_bundle_of_a_package_built_here(tmp_path: Path) -> None:
    """provenance_references (called for an image's provenance) finds, for a package whose lock URL is in
    Bastion's repository, the bundle whose subjects include that .deb's digest; for another digest, none."""
    from bastion.attest import (
        PROVENANCE_PREDICATE_TYPE,
        Subject,
        ephemeral_signer,
        make_statement,
        sign_statement,
    )
    from bastion.source import provenance_references

    repository = LocalRepository(tmp_path / "repository", tmp_path / "keys")
    deb = _deb(tmp_path)
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    statement = make_statement(
        [Subject(name=deb.name, digest={"sha256": digest})], PROVENANCE_PREDICATE_TYPE, {}
    )
    bundle = sign_statement(statement, ephemeral_signer())
    name = "provenance/tiny-bastion/1.0-1+bastion1_amd64.sigstore.json"
    [published] = repository.publish("tiny-bastion", [deb], {name: bundle})
    url = published.path.resolve().as_uri()
    assert provenance_references([(url, digest)]) == [
        ((tmp_path / "repository" / name).resolve().as_uri(), hashlib.sha256(bundle).hexdigest(),
         f"provenance of {deb.name}")
    ]  # fmt: skip
    assert provenance_references([(url, "0" * 64)]) == []
    assert provenance_references([("http://127.0.0.1:1/pool/main/t/tiny-bastion/x.deb", digest)]) == []
    with pytest.raises(InternalError):
        repository.publish("tiny-bastion", [deb], {"dists/bastion/InRelease": b"x"})
