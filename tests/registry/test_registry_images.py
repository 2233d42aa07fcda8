"""A real image built by Bastion, pushed to a real registry, read by skopeo, pulled back and copied."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.oci import RegistryClient, Store, TransferStats, copy_image, pull_image, push_image
from bastion.oci._http import sha256_digest
from tests.conftest import run_cli
from tests.registry.conftest import Recorder, RegistryProcess

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

IMAGE = "bastion/static:12"


@pytest.fixture(scope="module")
def built_store(cached_home: Path) -> Store:
    result = run_cli("build", "catalog/static/static.yaml", "--locked", home=cached_home)
    assert result.code == 0, result.stderr
    return Store(cached_home / "store", create=False)


def _skopeo(*args: str) -> str:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (scripts/test installs it)")
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_push_inspect_pull_copy(built_store: Store, registry: RegistryProcess, tmp_path: Path) -> None:
    local = built_store.resolve(IMAGE)
    remote = f"{registry.host}/bastion/static:12"
    with RegistryClient(registry.host) as client:
        stats = TransferStats()
        pushed = push_image(built_store, IMAGE, remote, client, stats=stats)
        assert pushed.digest == local.digest
        again = TransferStats()
        push_image(built_store, IMAGE, remote, client, stats=again)
        assert again.transferred == 0 and again.skipped == stats.transferred + stats.skipped

        # skopeo, an independent client, reads what we pushed: the raw index is byte-identical.
        raw = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{remote}")
        assert sha256_digest(raw.encode()) == local.digest
        for arch in ("amd64", "arm64"):
            info = json.loads(
                _skopeo("inspect", "--tls-verify=false", "--override-arch", arch, f"docker://{remote}")
            )
            assert info["Architecture"] == arch
            assert info["Digest"] == local.digest
        _skopeo(
            "copy", "--src-tls-verify=false", "--all", f"docker://{remote}", f"oci:{tmp_path / 'skopeo'}:x"
        )

        pulled = Store(tmp_path / "pulled")
        got = pull_image(client, remote, pulled)
        assert got.digest == local.digest
        assert pulled.list_tags()[remote].digest == local.digest
        assert sorted(d.digest for d in pulled.walk(got)) == sorted(d.digest for d in built_store.walk(local))
        for blob in pulled.walk(got):
            pulled.verify_blob(blob)

        # Copy to another repository on the same registry: blobs are mounted, not uploaded again.
        recorder = Recorder()
        with RegistryClient(registry.host, transport=recorder) as dst:
            copy_stats = TransferStats()
            copied = copy_image(client, remote, dst, f"{registry.host}/mirror/static:12", stats=copy_stats)
        assert copied.digest == local.digest
        assert copy_stats.mounted > 0 and copy_stats.transferred == 0
        assert not any(m == "PATCH" for m, _ in recorder.requests)
        _skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/mirror/static:12")


def test_copy_between_registries_streams_chunks(
    built_store: Store, registry: RegistryProcess, basic_registry: RegistryProcess
) -> None:
    from bastion.oci import Credentials
    from tests.registry.conftest import PASSWORD, USER

    local = built_store.resolve(IMAGE)
    with RegistryClient(registry.host) as src:
        push_image(built_store, IMAGE, f"{registry.host}/bastion/static:12", src)
        recorder = Recorder()
        with RegistryClient(
            basic_registry.host,
            credentials=Credentials(USER, PASSWORD),
            transport=recorder,
            monolithic_threshold=256 * 1024,
            chunk_size=256 * 1024,
        ) as dst:
            copied = copy_image(
                src, f"{registry.host}/bastion/static:12", dst, f"{basic_registry.host}/copied/static:12"
            )
            assert copied.digest == local.digest
            assert dst.head_manifest("copied/static", "12") is not None
    assert any(m == "PATCH" for m, _ in recorder.requests)
