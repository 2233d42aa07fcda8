"""Referrers: the fallback tag on a real docker-registry (which has no referrers API), two concurrent
attachers, copying attestations along with an image, and the referrers API code path."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.oci import (
    MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    RegistryClient,
    Store,
    canonical_json,
    copy_image,
    fallback_tag,
    image_manifest,
    parse_index,
    push_image,
)
from bastion.oci._http import sha256_digest
from tests.registry.conftest import RegistryProcess, make_image

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = b"{}"


def _artifact(subject: Descriptor, payload: bytes, predicate: str) -> tuple[Descriptor, bytes, bytes]:
    """An artifact manifest as cosign v3 writes one: empty config, one bundle layer, a subject."""
    config = Descriptor(MEDIA_TYPE_EMPTY, sha256_digest(EMPTY), len(EMPTY))
    layer = Descriptor(BUNDLE_TYPE, sha256_digest(payload), len(payload))
    doc = image_manifest(
        config,
        [layer],
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=BUNDLE_TYPE,
        annotations={"dev.sigstore.bundle.predicateType": predicate},
    )
    data = canonical_json(doc)
    return Descriptor(MEDIA_TYPE_MANIFEST, sha256_digest(data), len(data)), data, payload


def _attach(
    client: RegistryClient, repo: str, subject: Descriptor, payload: bytes, predicate: str
) -> Descriptor:
    desc, data, layer = _artifact(subject, payload, predicate)
    client.put_blob(repo, Descriptor(MEDIA_TYPE_EMPTY, sha256_digest(EMPTY), len(EMPTY)), EMPTY)
    client.put_blob(repo, Descriptor(BUNDLE_TYPE, sha256_digest(layer), len(layer)), layer)
    return client.attach(repo, data, desc, subject)


def _pushed_image(client: RegistryClient, registry: RegistryProcess, tmp_path: Path, repo: str) -> Descriptor:
    store = Store(tmp_path / "store")
    top = make_image(store, seed=repo, layer_sizes=(2000,))
    store.tag("local/image:1", top)
    push_image(store, "local/image:1", f"{registry.host}/{repo}:1", client)
    return top


def test_fallback_tag_keeps_artifact_type_and_annotations(registry: RegistryProcess, tmp_path: Path) -> None:
    with RegistryClient(registry.host) as client:
        top = _pushed_image(client, registry, tmp_path, "referrers/fallback")
        attached = _attach(
            client, "referrers/fallback", top, b'{"bundle": 1}', "https://slsa.dev/provenance/v1"
        )
        _attach(client, "referrers/fallback", top, b'{"bundle": 2}', "https://spdx.dev/Document")
        # The same artifact again changes nothing.
        _attach(client, "referrers/fallback", top, b'{"bundle": 1}', "https://slsa.dev/provenance/v1")
        found = client.referrers("referrers/fallback", top.digest)
        assert fallback_tag(top.digest) in client.list_tags("referrers/fallback")
        assert fallback_tag(top.digest) == "sha256-" + top.digest.removeprefix("sha256:")
        _, raw = client.get_manifest("referrers/fallback", fallback_tag(top.digest))
    assert len(found) == 2
    assert found[0].digest == attached.digest
    assert {d.artifact_type for d in found} == {BUNDLE_TYPE}
    assert {d.annotations["dev.sigstore.bundle.predicateType"] for d in found} == {
        "https://slsa.dev/provenance/v1",
        "https://spdx.dev/Document",
    }
    entries = json.loads(raw)["manifests"]
    assert all(e["artifactType"] == BUNDLE_TYPE and "annotations" in e for e in entries)
    with RegistryClient(registry.host) as client:
        assert client.referrers("referrers/fallback", top.digest, artifact_type="other/type") == []
        assert client.referrers("referrers/fallback", sha256_digest(b"no such subject")) == []


def test_attach_refuses_wrong_subject(registry: RegistryProcess, tmp_path: Path) -> None:
    with RegistryClient(registry.host) as client:
        top = _pushed_image(client, registry, tmp_path, "referrers/wrong")
        desc, data, _ = _artifact(top, b"x", "p")
        other = Descriptor(MEDIA_TYPE_INDEX, sha256_digest(b"other"), 5)
        with pytest.raises(Exception, match="subject"):
            client.attach("referrers/wrong", data, desc, other)


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_attachers_both_end_up_in_the_index(
    registry: RegistryProcess, tmp_path: Path, round_: int
) -> None:
    repo = f"referrers/race{round_}"
    with RegistryClient(registry.host) as setup:
        top = _pushed_image(setup, registry, tmp_path, repo)
    barrier = threading.Barrier(2)
    results: dict[int, Descriptor] = {}
    errors: list[BaseException] = []

    def attacher(n: int) -> None:
        try:
            with RegistryClient(registry.host) as client:
                desc, data, layer = _artifact(top, f'{{"writer": {n}}}'.encode(), f"predicate-{n}")
                client.put_blob(repo, Descriptor(MEDIA_TYPE_EMPTY, sha256_digest(EMPTY), 2), EMPTY)
                client.put_blob(repo, Descriptor(BUNDLE_TYPE, sha256_digest(layer), len(layer)), layer)
                barrier.wait()  # both read the (empty) fallback tag at about the same moment
                results[n] = client.attach(repo, data, desc, top)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attacher, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with RegistryClient(registry.host) as client:
        found = {d.digest for d in client.referrers(repo, top.digest)}
    assert found == {results[0].digest, results[1].digest}


def test_copy_image_with_referrers(registry: RegistryProcess, tmp_path: Path) -> None:
    with RegistryClient(registry.host) as client:
        top = _pushed_image(client, registry, tmp_path, "copy/source")
        store = Store(tmp_path / "store")
        platform_manifest = store.read_index(top).manifests[0]
        on_index = _attach(client, "copy/source", top, b'{"on": "index"}', "https://spdx.dev/Document")
        on_platform = _attach(
            client, "copy/source", platform_manifest, b'{"on": "amd64"}', "https://slsa.dev/provenance/v1"
        )
        # A signature of an attestation: a referrer of a referrer.
        on_artifact = _attach(client, "copy/source", on_index, b'{"sig": 1}', "sig")
        copied = copy_image(
            client,
            f"{registry.host}/copy/source:1",
            client,
            f"{registry.host}/copy/dest:2",
            with_referrers=True,
        )
        assert copied.digest == top.digest
        assert [d.digest for d in client.referrers("copy/dest", top.digest)] == [on_index.digest]
        assert [d.digest for d in client.referrers("copy/dest", platform_manifest.digest)] == [
            on_platform.digest
        ]
        assert [d.digest for d in client.referrers("copy/dest", on_index.digest)] == [on_artifact.digest]
        _, data = client.get_manifest("copy/dest", "2")
    assert sha256_digest(data) == top.digest


# -- the referrers API, against a loopback server of our own -----------------------------------------


class _ReferrersApi(http.server.BaseHTTPRequestHandler):
    """Implements only ``GET /v2/<repo>/referrers/<digest>`` (two pages) and manifest ``PUT`` answering
    with ``OCI-Subject``: docker-registry 2.8 has neither, so this stands in for a 1.1 registry."""

    index_pages: list[bytes] = []
    puts: list[str] = []
    queries: list[str] = []

    def do_GET(self) -> None:
        match = re.fullmatch(r"/v2/api/repo/referrers/(sha256:[0-9a-f]{64})(\?.*)?", self.path)
        if not match:
            self._send(404, b"{}", "application/json")
            return
        self.queries.append(match.group(2) or "")
        page = 1 if "page=2" in self.path else 0
        body = self.index_pages[page]
        extra = {"Link": f'</v2/api/repo/referrers/{match.group(1)}?page=2>; rel="next"'} if page == 0 else {}
        self._send(200, body, MEDIA_TYPE_INDEX, extra)

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        data = self.rfile.read(length)
        self.puts.append(self.path)
        subject = json.loads(data)["subject"]["digest"]
        self._send(
            201, b"", "text/plain", {"OCI-Subject": subject, "Docker-Content-Digest": sha256_digest(data)}
        )

    def do_HEAD(self) -> None:
        self._send(404, b"", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def referrers_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ReferrersApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_referrers_api_code_path(referrers_api: str) -> None:
    """Unit test of the referrers API path against our own loopback server (not a real registry)."""
    subject = Descriptor(MEDIA_TYPE_MANIFEST, sha256_digest(b"subject"), 7)
    a, _a_data, _ = _artifact(subject, b"a", "pa")
    b, b_data, _ = _artifact(subject, b"b", "pb")
    a_entry = Descriptor(a.media_type, a.digest, a.size, {"k": "v"}, artifact_type=BUNDLE_TYPE)
    b_entry = Descriptor(b.media_type, b.digest, b.size, artifact_type="application/other")
    _ReferrersApi.index_pages = [
        canonical_json({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": [a_entry.to_json()]}),
        canonical_json({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": [b_entry.to_json()]}),
    ]
    _ReferrersApi.puts = []
    _ReferrersApi.queries = []
    with RegistryClient(referrers_api, retries=0) as client:
        assert client.referrers("api/repo", subject.digest) == [a_entry, b_entry]
        assert client.referrers("api/repo", subject.digest, artifact_type=BUNDLE_TYPE) == [a_entry]
        assert "artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson" in _ReferrersApi.queries[-2]
        # A registry that answers OCI-Subject maintains the list itself: no fallback tag is written.
        client.attach("api/repo", b_data, b, subject)
    assert _ReferrersApi.puts == [f"/v2/api/repo/manifests/{b.digest}"]
    assert parse_index(_ReferrersApi.index_pages[0]).manifests[0].annotations == {"k": "v"}
