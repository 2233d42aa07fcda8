"""VEX through ``bastion cves`` on a multi-platform image in the store: an image answers to the index
digest ``bastion build`` prints (what users pin and write VEX against) as well as to its platform
manifest digest, never to another image's; and a document whose statements name nothing in the image
is reported on stderr, so nobody takes it for a working suppression."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bastion.oci import (
    Descriptor,
    LayerEntry,
    Platform,
    RuntimeConfig,
    Store,
    add_layer,
    parse_index,
    put_image,
    put_index,
)
from tests.conftest import CliResult, run_cli

EPOCH = 1_700_000_000
IMAGE = "bastion/python:3.11"
CVE = "CVE-2021-3572"  # pip 21.0 (the real PyPI advisories in the session database)


def _pip_layer(arch: str) -> list[LayerEntry]:
    info = "usr/lib/python3/dist-packages/pip-21.0.dist-info"
    metadata = b"Metadata-Version: 2.1\nName: pip\nVersion: 21.0\n"
    entries = [LayerEntry(path, "dir", 0o755, 0, 0, EPOCH) for path in (
        "etc", "usr", "usr/lib", "usr/lib/python3", "usr/lib/python3/dist-packages", info)]  # fmt: skip
    entries.append(LayerEntry("etc/arch", "file", 0o644, 0, 0, EPOCH, data=arch.encode()))
    entries.append(LayerEntry(f"{info}/METADATA", "file", 0o644, 0, 0, EPOCH, data=metadata))
    return entries


@pytest.fixture(scope="module")
def image(real_home: Path) -> tuple[Path, Descriptor, dict[str, str]]:
    """``bastion/python:3.11`` in the session home's store: an index over amd64 and arm64."""
    store = Store(real_home / "store")
    manifests = [
        put_image(
            store,
            platform=Platform.parse(f"linux/{arch}"),
            layers=[add_layer(store, _pip_layer(arch), source_date_epoch=EPOCH)],
            runtime=RuntimeConfig(user="65532"),
            source_date_epoch=EPOCH,
        )
        for arch in ("amd64", "arm64")
    ]
    index = store.tag(IMAGE, put_index(store, manifests))
    by_arch = {
        d.platform.architecture: d.digest
        for d in parse_index(store.read_blob(index.digest)).manifests
        if d.platform is not None
    }
    return real_home, index, by_arch


def _vex(path: Path, *products: dict[str, object]) -> Path:
    statements = [
        {"vulnerability": {"name": CVE}, "products": [product], "status": "not_affected",
         "justification": "vulnerable_code_not_in_execute_path"}
        for product in products
    ]  # fmt: skip
    path.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": f"https://example.invalid/{path.stem}",
                                "author": "Jane Doe", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
                                "statements": statements}))  # fmt: skip
    return path


def _cves(home: Path, vex: Path, image: str = IMAGE) -> tuple[CliResult, set[str]]:
    started = time.monotonic()
    result = run_cli(
        "cves", image, "--platform", "linux/amd64", "--vex", str(vex), "--format", "json", home=home
    )
    assert time.monotonic() - started < 120
    assert result.code == 0, result.stderr
    suppressed = json.loads(result.stdout).get("suppressed") or []
    return result, {i for f in suppressed for i in (f["id"], *f.get("aliases", []))}


def _purl(digest: str) -> str:
    return "pkg:oci/python@" + digest.replace(":", "%3A")


@pytest.mark.parametrize(
    "form",
    ["index-purl", "index-digest", "index-hash", "index-reference", "manifest-purl", "manifest-digest"],
)
def test_vex_names_the_image_by_any_of_its_digests(
    image: tuple[Path, Descriptor, dict[str, str]], tmp_path: Path, form: str
) -> None:
    home, index, by_arch = image
    product: dict[str, object] = {
        "index-purl": {"@id": _purl(index.digest)},
        "index-digest": {"@id": index.digest},
        "index-hash": {"@id": "image", "hashes": {"sha-256": index.digest.removeprefix("sha256:")}},
        "index-reference": {"@id": f"bastion/python@{index.digest}"},
        "manifest-purl": {"@id": _purl(by_arch["amd64"])},
        "manifest-digest": {"@id": by_arch["amd64"]},
    }[form]
    result, suppressed = _cves(home, _vex(tmp_path / "vex.json", product))
    assert CVE in suppressed, result.stderr
    assert "1 statements, 1 applied" in result.stderr


@pytest.mark.parametrize("named", [IMAGE, "bastion/python@{index}"])
def test_vex_names_the_image_by_its_store_name_when_the_user_typed_a_short_one(
    image: tuple[Path, Descriptor, dict[str, str]], tmp_path: Path, named: str
) -> None:
    home, index, _ = image
    vex = _vex(tmp_path / "vex.json", {"@id": named.format(index=index.digest)})
    result, suppressed = _cves(home, vex, image="python:3.11")  # the store resolves it to bastion/python
    assert CVE in suppressed, result.stderr


def test_other_images_digests_do_not_match_and_unused_statements_are_reported(
    image: tuple[Path, Descriptor, dict[str, str]], tmp_path: Path
) -> None:
    home, index, by_arch = image
    other = "sha256:" + "cd" * 32
    vex = _vex(
        tmp_path / "other.json",
        {"@id": other},
        {"@id": _purl(other)},
        {"@id": by_arch["arm64"]},  # the same index's other platform is another image
        {"@id": "pkg:oci/node@" + index.digest.replace(":", "%3A")},
    )
    result, suppressed = _cves(home, vex)
    assert CVE not in suppressed
    line = next(line for line in result.stderr.splitlines() if "statements" in line)
    assert f"{vex}: 4 statements, 0 applied" in line and "name no finding" in line
