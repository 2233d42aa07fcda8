"""The registry client against a real docker-registry: manifests, blobs, uploads, mounts, auth, retries,
and registries that serve content not matching its digest."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from bastion.errors import IntegrityError, NetworkError
from bastion.oci import (
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER_GZIP,
    AuthenticationError,
    Credentials,
    Descriptor,
    RegistryClient,
    Store,
    pull_image,
    push_image,
)
from tests.registry.conftest import (
    PASSWORD,
    USER,
    FaultProxy,
    Recorder,
    RegistryProcess,
    TlsRegistry,
    TokenServer,
    _random_bytes,
    make_image,
)


def _blob(seed: str, size: int) -> tuple[Descriptor, bytes]:
    data = _random_bytes(seed, size)
    return Descriptor(MEDIA_TYPE_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), len(data)), data


def test_version_check_and_unknown_manifest(registry: RegistryProcess) -> None:
    with RegistryClient(registry.host) as client:
        assert client.base_url == f"http://{registry.host}"
        client.check_version()
        assert client.head_manifest("nothing/here", "latest") is None
        with pytest.raises(Exception, match="not found"):
            client.get_manifest("nothing/here", "latest")


def test_non_loopback_registry_uses_https() -> None:
    assert RegistryClient("registry.example:5000").base_url == "https://registry.example:5000"
    assert RegistryClient("registry.example:5000", insecure=True).base_url == "http://registry.example:5000"
    assert RegistryClient("localhost:5000").base_url == "http://localhost:5000"


def test_monolithic_upload_is_one_put(registry: RegistryProcess) -> None:
    recorder = Recorder()
    desc, data = _blob("mono", 50_000)
    with RegistryClient(registry.host, transport=recorder, monolithic_threshold=1 << 20) as client:
        assert client.put_blob("upload/mono", desc, data) == "uploaded"
        assert client.put_blob("upload/mono", desc, data) == "exists"
        out = io.BytesIO()
        assert client.get_blob("upload/mono", desc.digest, out, size=desc.size) == desc.size
    assert out.getvalue() == data
    methods = [m for m, p in recorder.requests if "/blobs/uploads/" in p]
    assert methods == ["POST", "PUT"]


def test_chunked_upload_uses_patch_with_content_range(registry: RegistryProcess, tmp_path: Path) -> None:
    recorder = Recorder()
    desc, data = _blob("chunked", 300_001)
    source = tmp_path / "blob"
    source.write_bytes(data)
    with RegistryClient(
        registry.host, transport=recorder, monolithic_threshold=1000, chunk_size=64 * 1024
    ) as client:
        assert client.put_blob("upload/chunked", desc, source) == "uploaded"
        out = io.BytesIO()
        client.get_blob("upload/chunked", desc.digest, out)
    assert out.getvalue() == data
    methods = [m for m, p in recorder.requests if "/blobs/uploads/" in p]
    assert methods == ["POST"] + ["PATCH"] * 5 + ["PUT"]


def test_upload_refuses_source_that_does_not_match(registry: RegistryProcess) -> None:
    desc, data = _blob("liar", 5000)
    wrong = bytearray(data)
    wrong[10] ^= 1
    with RegistryClient(registry.host) as client:
        with pytest.raises(IntegrityError):
            client.put_blob("upload/liar", desc, bytes(wrong))
        with pytest.raises(IntegrityError):
            RegistryClient(registry.host, monolithic_threshold=10, chunk_size=1000).put_blob(
                "upload/liar", desc, bytes(wrong)
            )
        assert not client.blob_exists("upload/liar", desc.digest)


def test_cross_repository_mount(registry: RegistryProcess) -> None:
    desc, data = _blob("mount", 20_000)
    recorder = Recorder()
    with RegistryClient(registry.host, transport=recorder) as client:
        client.put_blob("mount/source", desc, data)
        assert client.put_blob("mount/target", desc, data, mount_from="mount/source") == "mounted"
        assert client.blob_exists("mount/target", desc.digest, desc.size)
        # A mount from a repository without the blob falls back to an upload in the session it opened.
        other, other_data = _blob("mount-miss", 1000)
        assert client.put_blob("mount/target", other, other_data, mount_from="mount/source") == "uploaded"
    posts = [p for m, p in recorder.requests if m == "POST"]
    assert any("mount=" in p for p in posts)
    assert sum(1 for m, p in recorder.requests if m == "PUT" and "/blobs/uploads/" in p) == 2


def test_manifests_tags_and_delete(registry: RegistryProcess, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    top = make_image(store, seed="tags")
    store.tag("local/tags:1", top)
    with RegistryClient(registry.host) as client:
        pushed = push_image(store, "local/tags:1", f"{registry.host}/tags/image:1", client)
        assert pushed.digest == top.digest
        push_image(store, "local/tags:1", f"{registry.host}/tags/image:2", client)
        assert sorted(client.list_tags("tags/image")) == ["1", "2"]
        head = client.head_manifest("tags/image", "1")
        assert head is not None
        assert (head.digest, head.size, head.media_type) == (top.digest, top.size, MEDIA_TYPE_INDEX)
        _desc, data = client.get_manifest("tags/image", top.digest)
        assert data == store.read_blob(top.digest)
        client.delete_manifest("tags/image", top.digest)
        assert client.head_manifest("tags/image", "1") is None


def test_manifest_digest_mismatch_is_refused(registry: RegistryProcess, tmp_path: Path) -> None:
    """A registry whose stored manifest bytes were changed behind its back: the digest it names no
    longer matches the bytes it serves."""
    store = Store(tmp_path / "store")
    top = make_image(store, seed="tampered-manifest")
    store.tag("local/t:1", top)
    with RegistryClient(registry.host) as client:
        push_image(store, "local/t:1", f"{registry.host}/tamper/manifest:1", client)
        path = registry.blob_data_path(top.digest)
        doc = json.loads(path.read_bytes())
        doc["annotations"] = {"evil": "yes"}
        path.write_bytes(json.dumps(doc).encode())
        with pytest.raises(IntegrityError, match="registry says"):
            client.get_manifest("tamper/manifest", "1")
        with pytest.raises(IntegrityError, match="not the one asked for"):
            client.get_manifest("tamper/manifest", top.digest)
        empty = Store(tmp_path / "pulled")
        with pytest.raises(IntegrityError):
            pull_image(client, f"{registry.host}/tamper/manifest:1", empty)
        assert empty.list_tags() == {}
        assert not empty.has_blob(top.digest)


def test_corrupt_blob_in_registry_storage(registry: RegistryProcess, tmp_path: Path) -> None:
    """A blob file in the registry's storage replaced by other bytes of the same size."""
    store = Store(tmp_path / "store")
    top = make_image(store, seed="tampered-blob")
    store.tag("local/b:1", top)
    manifest = store.read_index(top).manifests[0]
    layer = store.read_manifest(manifest).layers[1]
    with RegistryClient(registry.host) as client:
        push_image(store, "local/b:1", f"{registry.host}/tamper/blob:1", client)
        path = registry.blob_data_path(layer.digest)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(IntegrityError, match="expected"):
            client.get_blob("tamper/blob", layer.digest, io.BytesIO())
        empty = Store(tmp_path / "pulled")
        with pytest.raises(IntegrityError):
            pull_image(client, f"{registry.host}/tamper/blob:1", empty)
    assert empty.list_tags() == {}
    assert not empty.has_blob(layer.digest)
    assert not any(p.name.startswith(".tmp-") for p in empty.blobs_dir.iterdir())


def test_tampering_proxy_is_caught(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    top = make_image(store, seed="proxy-tamper")
    store.tag("local/p:1", top)
    with RegistryClient(fault_proxy.host, backoff=0.01) as client:
        push_image(store, "local/p:1", f"{fault_proxy.host}/proxy/tamper:1", client)

        def flip(method: str, path: str, body: bytes) -> bytes:
            if "/blobs/" in path and len(body) > 100_000:
                return body[:-1] + bytes([body[-1] ^ 1])
            return body

        fault_proxy.tamper = flip
        empty = Store(tmp_path / "pulled")
        with pytest.raises(IntegrityError):
            pull_image(client, f"{fault_proxy.host}/proxy/tamper:1", empty)
        assert empty.list_tags() == {}


def test_retries_on_500_and_dropped_connections(fault_proxy: FaultProxy, tmp_path: Path) -> None:
    budget = {"PATCH": 1, "PUT": 1, "GET": 2, "HEAD": 1}

    def flaky(method: str, path: str) -> str | int | None:
        if budget.get(method, 0) > 0 and "/v2/flaky/" in path:
            budget[method] -= 1
            return "drop" if method in ("PATCH", "GET") else 503
        return None

    fault_proxy.faults.append(flaky)
    store = Store(tmp_path / "store")
    top = make_image(store, seed="flaky")
    store.tag("local/f:1", top)
    with RegistryClient(
        fault_proxy.host, backoff=0.01, monolithic_threshold=50_000, chunk_size=64_000
    ) as client:
        push_image(store, "local/f:1", f"{fault_proxy.host}/flaky/image:1", client)
        pulled = Store(tmp_path / "pulled")
        got = pull_image(client, f"{fault_proxy.host}/flaky/image:1", pulled)
    assert got.digest == top.digest
    assert all(v == 0 for v in budget.values())
    failures = [s for _, _, s in fault_proxy.seen if s in (0, 503)]
    assert len(failures) == 5


def test_retries_are_bounded(fault_proxy: FaultProxy) -> None:
    fault_proxy.faults.append(lambda method, path: 500 if "/manifests/" in path else None)
    with (
        RegistryClient(fault_proxy.host, retries=2, backoff=0.01) as client,
        pytest.raises(NetworkError, match="HTTP 500"),
    ):
        client.get_manifest("always/fails", "latest")
    assert sum(1 for _, p, s in fault_proxy.seen if s == 500) == 3


def test_basic_auth(basic_registry: RegistryProcess, tmp_path: Path) -> None:
    desc, data = _blob("basic", 1000)
    with RegistryClient(basic_registry.host, credentials=Credentials(USER, PASSWORD)) as client:
        client.check_version()
        assert client.put_blob("auth/basic", desc, data) == "uploaded"
    with RegistryClient(basic_registry.host, credentials=Credentials(USER, "wrong")) as client:
        with pytest.raises(AuthenticationError, match="refused the credentials") as info:
            client.blob_exists("auth/basic", desc.digest)
        assert info.value.exit_code == 2
    empty_config = tmp_path / "config.json"
    empty_config.write_text("{}")
    with (
        RegistryClient(basic_registry.host, docker_config=empty_config) as client,
        pytest.raises(AuthenticationError, match="requires a user name"),
    ):
        client.check_version()


def test_basic_auth_from_docker_config(basic_registry: RegistryProcess, tmp_path: Path) -> None:
    import base64

    config = tmp_path / "config.json"
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config.write_text(json.dumps({"auths": {f"http://{basic_registry.host}": {"auth": auth}}}))
    with RegistryClient(basic_registry.host, docker_config=config) as client:
        client.check_version()
        desc, data = _blob("docker-config", 100)
        assert client.put_blob("auth/config", desc, data) == "uploaded"
        assert client.blob_exists("auth/config", desc.digest, desc.size)


def test_token_auth(token_registry: RegistryProcess, token_server: TokenServer, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    top = make_image(store, seed="token", layer_sizes=(1000,))
    store.tag("local/tok:1", top)
    token_server.requests.clear()
    with RegistryClient(token_registry.host, credentials=Credentials(USER, PASSWORD)) as client:
        push_image(store, "local/tok:1", f"{token_registry.host}/token/image:1", client)
        pulled = Store(tmp_path / "pulled")
        assert pull_image(client, f"{token_registry.host}/token/image:1", pulled).digest == top.digest
        # A mount asks for pull on the source repository too, and the token covers both.
        desc, data = _blob("token-mount", 500)
        client.put_blob("token/image", desc, data)
        assert client.put_blob("token/other", desc, data, mount_from="token/image") == "mounted"
    # The registry's challenge names the scope and we ask for exactly that; docker-registry lists the
    # actions in Go map order ("push,pull" or "pull,push"), so compare them as sets.
    scopes = {
        (s.rpartition(":")[0], frozenset(s.rpartition(":")[2].split(",")))
        for q in token_server.requests
        for s in q.get("scope", [])
    }
    assert ("repository:token/image", frozenset({"pull", "push"})) in scopes
    assert ("repository:token/image", frozenset({"pull"})) in scopes
    assert ("repository:token/other", frozenset({"pull", "push"})) in scopes  # the mount
    # Tokens are cached per scope: far fewer token requests than registry requests.
    assert len(token_server.requests) <= 6
    with (
        RegistryClient(token_registry.host, credentials=Credentials(USER, "wrong")) as client,
        pytest.raises(AuthenticationError, match="refused the credentials"),
    ):
        client.get_manifest("token/image", "1")


def test_tls_with_test_ca(tls_registry: TlsRegistry, tmp_path: Path) -> None:
    host = tls_registry.process.host
    store = Store(tmp_path / "store")
    top = make_image(store, seed="tls", layer_sizes=(1000,))
    store.tag("local/tls:1", top)
    with RegistryClient(host, tls=True, ca_file=tls_registry.ca_file) as client:
        assert client.base_url == f"https://{host}"
        assert push_image(store, "local/tls:1", f"{host}/tls/image:1", client).digest == top.digest
        assert pull_image(client, f"{host}/tls/image:1", Store(tmp_path / "pulled")).digest == top.digest
    # Without the test CA the certificate is not trusted, and nothing falls back to plain HTTP.
    with (
        RegistryClient(host, tls=True, retries=0) as client,
        pytest.raises(NetworkError, match="CERTIFICATE"),
    ):
        client.check_version()
