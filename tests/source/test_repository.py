"""Bastion's APT repository: what it publishes verifies with gpgv against the key it publishes, and a
definition consumes it through the same InRelease → Packages → .deb chain as Debian's archive (``bastion
lock``). Offline: a .deb made here with dpkg-deb."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.errors import InputError, InternalError
from bastion.source import SUITE, LocalRepository
from tests.conftest import run_cli, serve_directory

pytestmark = pytest.mark.skipif(
    shutil.which("gpg") is None or shutil.which("dpkg-deb") is None, reason="needs gpg and dpkg-deb"
)


def _deb(tmp: Path, text: str = "built by Bastion\n", name: str = "tiny-bastion") -> Path:
    tree = tmp / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "share" / "tiny").mkdir(parents=True)
    (tree / "usr" / "share" / "tiny" / "note.txt").write_text(text)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1+bastion1\nArchitecture: all\nMaintainer: Bastion <builder@bastion.invalid>\n"
        "Description: a package published by Bastion's repository tests\n"
    )
    out = tmp / f"{name}_1.0-1+bastion1_all.deb"
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


def test_a_definition_takes_packages_from_bastions_repository_with_its_own_key(tmp_path: Path) -> None:
    """``contents.bastion-repository: true`` adds Bastion's repository (under BASTION_HOME) to the
    definition's sources, verified with its published key only: the definition's keyring vouches for
    its other repository, and neither key vouches for the other's suite."""
    home = tmp_path / "home"
    other = LocalRepository(tmp_path / "other" / "repository", tmp_path / "other" / "keys")
    other.publish("tiny-other", [_deb(tmp_path / "o", name="tiny-other")])
    ours = LocalRepository(home / "repository", home / "keys" / "apt")
    [published] = ours.publish("tiny-bastion", [_deb(tmp_path / "b")])
    definition = tmp_path / "tiny.yaml"
    definition.write_text(
        "name: tiny\nplatforms: [linux/amd64]\ncontents:\n"
        f"  repositories: [{{uri: '{other.uri}', suites: [{SUITE}], components: [main]}}]\n"
        f"  keyring: {other.keyring}\n  bastion-repository: true\n  packages: [tiny-bastion, tiny-other]\n"
    )
    result = run_cli("lock", str(definition), home=home)
    assert result.code == 0, result.stderr
    lock = json.loads(definition.with_suffix(".lock.json").read_text())
    by_name = {p["name"]: p for p in lock["variants"]["runtime"]["linux/amd64"]["packages"]}
    assert by_name["tiny-bastion"]["sha256"] == published.sha256
    assert by_name["tiny-bastion"]["repository"] == ours.uri
    assert by_name["tiny-other"]["repository"] == other.uri
    assert {s["repository"]: s["keyring"] for s in lock["suites"]} == {
        ours.uri: str(ours.keyring),
        other.uri: str(other.keyring),
    }
    assert lock["resolved-from"]["runtime"]["bastion-repository"] is True

    # The definition's keyring may not vouch for Bastion's repository: a key of another's there fails.
    shutil.copyfile(other.keyring, ours.keyring)
    again = run_cli("lock", "--update", str(definition), home=home)
    assert again.code == 2, again.stderr
    assert f"{ours.uri}/dists/{SUITE}/InRelease" in again.stderr.strip().splitlines()[-1]


def test_a_definition_asking_for_an_empty_bastion_repository_is_refused(tmp_path: Path) -> None:
    definition = tmp_path / "tiny.yaml"
    definition.write_text(
        "name: tiny\nplatforms: [linux/amd64]\ncontents:\n  bastion-repository: true\n  packages: [zlib1g]\n"
    )
    result = run_cli("lock", str(definition), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"{definition}: contents.bastion-repository" in line and "has none yet" in line


def _apt_get(
    root: Path, url: str, keyring: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """apt-get with a root of its own under ``root`` whose one source is ``url`` (suite bastion) and whose
    only trusted key is ``keyring`` (sources.list(5) Signed-By; no trusted.gpg, no trusted.gpg.d)."""
    etc = root / "etc"
    (etc / "trusted.gpg.d").mkdir(parents=True, exist_ok=True)
    (etc / "preferences.d").mkdir(exist_ok=True)
    (etc / "sources.list").write_text(f"deb [signed-by={keyring}] {url} {SUITE} main\n")
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status").touch()
    options = {
        "Dir::Etc": str(etc), "Dir::Etc::sourceparts": "-", "Dir::Etc::main": "-",
        "Dir::Etc::trusted": str(etc / "trusted.gpg"), "Dir::Etc::trustedparts": str(etc / "trusted.gpg.d"),
        "Dir::Etc::preferencesparts": str(etc / "preferences.d"),
        "Dir::State": str(root / "state"), "Dir::State::status": str(root / "status"),
        "Dir::Cache": str(root / "cache"), "APT::Architecture": "amd64", "APT::Architectures": "amd64",
        "APT::Sandbox::User": "root", "Debug::NoLocking": "true", "Acquire::Languages": "none",
    }  # fmt: skip
    flags = [item for key, value in options.items() for item in ("-o", f"{key}={value}")]
    return subprocess.run(
        ["apt-get", *flags, *args], capture_output=True, text=True, check=False, timeout=120, cwd=cwd
    )


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_apt_get_accepts_the_repository_and_refuses_a_tampered_packages(tmp_path: Path) -> None:
    """apt itself, trusting only the repository's published key, takes the suite Bastion signed, and
    refuses it once Packages no longer has the SHA256 the signed Release lists."""
    repository = LocalRepository(tmp_path / "repository", tmp_path / "keys")
    [published] = repository.publish("tiny-bastion", [_deb(tmp_path)])
    suite = (tmp_path / "repository" / "dists" / SUITE).resolve()
    with serve_directory(tmp_path / "repository") as url:
        update = _apt_get(tmp_path / "apt", url, repository.keyring, "update")
        assert update.returncode == 0 and "W:" not in update.stdout + update.stderr, (
            update.stdout + update.stderr
        )
        # apt-get download checks the .deb against the SHA256 of the index it verified.
        (tmp_path / "downloaded").mkdir()
        fetched = _apt_get(tmp_path / "apt", url, repository.keyring, "download", "tiny-bastion",
                           cwd=tmp_path / "downloaded")  # fmt: skip
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        deb = tmp_path / "downloaded" / published.name
        assert hashlib.sha256(deb.read_bytes()).hexdigest() == published.sha256

        # Packages changed after signing: Release's SHA256 no longer matches, apt refuses the index.
        for name in ("Packages", "Packages.gz"):
            index = suite / "main" / "binary-amd64" / name
            text = gzip.decompress(index.read_bytes()) if name.endswith(".gz") else index.read_bytes()
            tampered = text.replace(b"Version: 1.0-1+bastion1", b"Version: 9.0-1+bastion1")
            index.write_bytes(gzip.compress(tampered, mtime=0) if name.endswith(".gz") else tampered)
        shutil.rmtree(tmp_path / "apt" / "state" / "lists")
        refused = _apt_get(tmp_path / "apt", url, repository.keyring, "update")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 or "E:" in output, output
        assert "Hash Sum mismatch" in output or "File has unexpected size" in output, output

        # Signed by another key than the one apt trusts: refused too (NO_PUBKEY).
        stranger = LocalRepository(tmp_path / "stranger", tmp_path / "stranger-keys")
        stranger.publish("tiny-bastion", [_deb(tmp_path / "s")])
        shutil.rmtree(tmp_path / "apt" / "state" / "lists")
        unsigned = _apt_get(tmp_path / "apt2", url, stranger.keyring, "update")
        assert "NO_PUBKEY" in unsigned.stdout + unsigned.stderr or "not signed" in unsigned.stderr
