"""Hostile OCI layouts and docker archives through the ``bastion`` command.

A 100 KB layout whose indexes fan out (4 levels of 200 entries naming the same child) or chain 1,200
deep, and a docker-archive whose ``manifest.json`` is a chain of 3,000 symlinks or whose ``RepoTags``
is a number, must each end in a one-line refusal (exit 2), soon, never an internal error."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from bastion.oci import MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Descriptor, Store
from tests.conftest import CliResult, run_cli

QUICK = 15.0  # seconds
LAYOUT_COMMANDS = (["sbom"], ["compliance"], ["verify"], ["attest", "list"])


def _refused(result: CliResult, elapsed: float, *words: str) -> None:
    assert result.code == 2, (result.code, result.stderr)
    assert "internal error" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert elapsed < QUICK, elapsed


def _run(args: list[str], home: Path) -> tuple[CliResult, float]:
    if args[0] == "verify":
        args = [*args, "--key", str(_public_key(home))]
    started = time.monotonic()
    result = run_cli(*args, home=home)
    return result, time.monotonic() - started


def _public_key(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = directory / "trusted.pub"
    path.write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def _index(store: Store, children: list[dict[str, object]]) -> Descriptor:
    data = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": children}).encode()
    return store.put_blob(data, MEDIA_TYPE_INDEX)


def _entry(desc: Descriptor, platform: dict[str, str] | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
    if platform:
        entry["platform"] = platform
    return entry


def _layout(tmp_path: Path, levels: int, fan_out: int) -> Path:
    """A layout tagged ``hostile`` whose index tree is ``levels`` deep with ``fan_out`` copies of the
    same child at each level, above one riscv64 image."""
    store = Store(tmp_path / "layout")
    config = store.put_blob(
        json.dumps({"architecture": "riscv64", "os": "linux"}).encode(), MEDIA_TYPE_CONFIG
    )
    manifest = store.put_blob(
        json.dumps(
            {"schemaVersion": 2, "mediaType": MEDIA_TYPE_MANIFEST, "config": _entry(config), "layers": []}
        ).encode(),
        MEDIA_TYPE_MANIFEST,
    )
    child = _entry(manifest, {"os": "linux", "architecture": "riscv64"})
    for _level in range(levels):
        child = _entry(_index(store, [child] * fan_out))
    store.tag("hostile:latest", Descriptor(MEDIA_TYPE_INDEX, str(child["digest"]), int(str(child["size"]))))
    return store.root


@pytest.mark.parametrize("command", LAYOUT_COMMANDS, ids=" ".join)
def test_a_layout_whose_indexes_fan_out_is_read_once(tmp_path: Path, command: list[str]) -> None:
    layout = _layout(tmp_path, 4, 200)
    assert sum(f.stat().st_size for f in layout.rglob("*") if f.is_file()) < 200_000
    result, elapsed = _run([*command, f"oci-dir://{layout}", "--platform", "linux/s390x"], tmp_path)
    _refused(result, elapsed, "s390x")


@pytest.mark.parametrize("command", LAYOUT_COMMANDS, ids=" ".join)
def test_a_1200_level_index_chain_in_a_layout_is_refused(tmp_path: Path, command: list[str]) -> None:
    layout = _layout(tmp_path, 1200, 1)
    result, elapsed = _run([*command, f"oci-dir://{layout}", "--platform", "linux/riscv64"], tmp_path)
    _refused(result, elapsed, "nests more than 4 levels")


def _archive(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    """A tar of files (bytes) and symbolic links (str: the target)."""
    with tarfile.open(path, "w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


@pytest.mark.parametrize("links", [3000, 2], ids=["chain", "loop"])
def test_a_docker_archive_manifest_behind_a_symlink_chain_is_refused(tmp_path: Path, links: int) -> None:
    members: list[tuple[str, bytes | str]] = [("manifest.json", "link-0")]
    members += [(f"link-{n}", f"link-{(n + 1) % links}") for n in range(links)]  # the last one loops back
    archive = _archive(tmp_path / "chain.tar", members)
    result, elapsed = _run(["sbom", f"docker-archive://{archive}"], tmp_path)
    _refused(result, elapsed, "manifest.json", "symbolic links")


def test_a_docker_archive_whose_repo_tags_is_a_number_is_refused(tmp_path: Path) -> None:
    import hashlib

    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": 5, "Layers": []}]).encode()
    archive = _archive(tmp_path / "tags.tar", [("manifest.json", manifest), (name, config)])
    result, elapsed = _run(["sbom", f"docker-archive://{archive}"], tmp_path)
    _refused(result, elapsed, "RepoTags is not a list of strings")
