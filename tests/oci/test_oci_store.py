"""The local store: an OCI image layout with full reference names as tags, safe under concurrency."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from bastion.errors import InputError, IntegrityError
from bastion.oci import (
    ANNOTATION_REF_NAME,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    Store,
    canonical_json,
    image_manifest,
    parse_index,
)


def _manifest(store: Store, seed: str) -> Descriptor:
    config = store.put_json({"seed": seed}, MEDIA_TYPE_CONFIG)
    return store.put_json(image_manifest(config, []), MEDIA_TYPE_MANIFEST)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_new_store_is_an_oci_layout(tmp_path: Path) -> None:
    Store(tmp_path / "s")
    assert json.loads((tmp_path / "s/oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "s/index.json").read_text())
    assert index == {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}
    assert (tmp_path / "s/blobs/sha256").is_dir()


def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        Store(tmp_path / "nothing", create=False)


def test_put_and_read_blob(store: Store) -> None:
    desc = store.put_blob(b"hello", "text/plain")
    assert desc == Descriptor("text/plain", _sha(b"hello"), 5)
    assert store.has_blob(desc.digest)
    assert store.read_blob(desc.digest) == b"hello"
    assert store.put_blob(b"hello", "text/plain") == desc  # idempotent
    assert store.blob_path(desc.digest).stat().st_mode & 0o777 == 0o644


def test_corrupted_blob_is_detected_on_read(store: Store) -> None:
    desc = store.put_blob(b"{}")
    store.blob_path(desc.digest).write_bytes(b"[]")
    with pytest.raises(IntegrityError):
        store.read_blob(desc.digest)
    with pytest.raises(IntegrityError):
        store.verify_blob(desc)


def test_tag_resolve_list_remove(store: Store) -> None:
    python = _manifest(store, "python")
    node = _manifest(store, "node")
    tagged = store.tag("bastion/python:3.11", python)
    store.tag("bastion/node:22", node)
    store.tag("other/python:3.12", node)
    assert tagged.ref_name == "bastion/python:3.11"
    assert list(store.list_tags()) == ["bastion/node:22", "bastion/python:3.11", "other/python:3.12"]
    assert store.resolve("bastion/python:3.11").digest == python.digest
    assert store.resolve("python:3.11").digest == python.digest  # short name, unique match
    assert store.resolve(python.digest).digest == python.digest
    assert store.resolve("bastion/python@" + python.digest).digest == python.digest
    # re-tagging moves the tag
    store.tag("bastion/python:3.11", node)
    assert store.resolve("bastion/python:3.11").digest == node.digest
    assert len(store.index().manifests) == 3
    removed = store.remove_tag("bastion/python:3.11")
    assert removed.digest == node.digest
    assert "bastion/python:3.11" not in store.list_tags()
    # the index.json on disk is the canonical serialisation
    data = (store.root / "index.json").read_bytes()
    assert canonical_json(json.loads(data)) == data


def test_resolve_latest_and_ambiguity(store: Store) -> None:
    a = _manifest(store, "a")
    store.tag("bastion/static:latest", a)
    store.tag("bastion/base:1", a)
    store.tag("mirror/base:1", a)
    assert store.resolve("bastion/static").digest == a.digest
    assert store.resolve("static").digest == a.digest
    with pytest.raises(InputError, match="ambiguous") as excinfo:
        store.resolve("base:1")
    assert "bastion/base:1" in excinfo.value.diagnostic() and "mirror/base:1" in excinfo.value.diagnostic()


def test_unknown_image_names_what_is_available(store: Store) -> None:
    with pytest.raises(InputError) as excinfo:
        store.resolve("python:3.11")
    assert "python:3.11" in excinfo.value.diagnostic() and "no images" in excinfo.value.diagnostic()
    store.tag("bastion/node:22", _manifest(store, "n"))
    with pytest.raises(InputError) as excinfo:
        store.resolve("python:3.11")
    assert "available: bastion/node:22" in excinfo.value.diagnostic()
    with pytest.raises(InputError):
        store.resolve("sha256:" + "0" * 64)
    with pytest.raises(InputError):
        store.remove_tag("python:3.11")


def test_digest_of_a_non_image_blob_is_not_an_image(store: Store) -> None:
    blob = store.put_blob(b"plain bytes")
    with pytest.raises(InputError, match="not an image"):
        store.resolve(blob.digest)


@pytest.mark.parametrize("ref", ["", "bastion/python:", "-bad", "a b", "a/../b", "a//b"])
def test_invalid_tag_names(store: Store, ref: str) -> None:
    with pytest.raises(InputError):
        store.tag(ref, _manifest(store, "x"))


def test_put_blob_file_moves_a_verified_file(store: Store) -> None:
    with store.blob_writer() as writer:
        tmp = writer.path
    assert not tmp.exists()  # an uncommitted writer cleans up
    tmp = store.blobs_dir / ".tmp-manual"
    tmp.write_bytes(b"layer bytes")
    desc = store.put_blob_file(tmp, _sha(b"layer bytes"), 11, "application/x-test")
    assert desc.media_type == "application/x-test"
    assert not tmp.exists()
    assert store.read_blob(desc.digest) == b"layer bytes"


def test_put_blob_file_digest_mismatch(store: Store, tmp_path: Path) -> None:
    before = sorted(store.blobs_dir.iterdir())
    for tmp in (store.blobs_dir / ".tmp-bad", tmp_path / "outside"):
        tmp.write_bytes(b"actual content")
        with pytest.raises(IntegrityError):
            store.put_blob_file(tmp, _sha(b"claimed content"), 14)
        assert not store.has_blob(_sha(b"claimed content"))
        assert not store.has_blob(_sha(b"actual content"))
        assert sorted(store.blobs_dir.iterdir()) == before
        assert not tmp.exists()  # the file is consumed either way
    tmp = tmp_path / "size"
    tmp.write_bytes(b"actual content")
    with pytest.raises(IntegrityError):
        store.put_blob_file(tmp, _sha(b"actual content"), 13)


def test_interrupted_writes_do_not_corrupt_the_store(store: Store) -> None:
    manifest = _manifest(store, "kept")
    store.tag("bastion/kept:1", manifest)
    # What a killed writer leaves behind: a half-written blob and a half-written index.json.
    half_blob = store.blobs_dir / ".tmp-deadbeef"
    half_blob.write_bytes(b"\x1f\x8b partial layer")
    half_index = store.root / ".tmp-index"
    half_index.write_bytes(b'{"manifests":[{"dig')
    reopened = Store(store.root)
    assert reopened.resolve("bastion/kept:1").digest == manifest.digest
    assert list(reopened.walk(reopened.resolve("bastion/kept:1")))  # every blob readable and verified
    reopened.tag("bastion/kept:2", manifest)
    assert set(reopened.list_tags()) == {"bastion/kept:1", "bastion/kept:2"}
    assert reopened.gc(grace_seconds=0) == []  # temp files go, tagged blobs stay
    assert not half_blob.exists()
    assert reopened.resolve("bastion/kept:2").digest == manifest.digest


def test_gc_removes_untagged_blobs(store: Store) -> None:
    kept = _manifest(store, "kept")
    store.tag("bastion/kept:1", kept)
    loose = store.put_blob(b"nobody references me")
    assert store.gc() == []  # within the grace period nothing goes
    assert store.gc(grace_seconds=0) == [loose.digest]
    assert store.has_blob(kept.digest)
    assert all(store.has_blob(d.digest) for d in store.walk(kept))


def _tag_many(root: str, worker: int, count: int) -> None:
    store = Store(Path(root))
    for i in range(count):
        config = store.put_json({"worker": worker, "i": i}, MEDIA_TYPE_CONFIG)
        manifest = store.put_json(image_manifest(config, []), MEDIA_TYPE_MANIFEST)
        store.tag(f"bastion/w{worker}:{i}", manifest)


def test_concurrent_tagging_from_processes(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    workers, per_worker = 6, 15
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_many, args=(str(root), w, per_worker)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    index = parse_index((root / "index.json").read_bytes())
    names = {d.annotations[ANNOTATION_REF_NAME] for d in index.manifests}
    assert names == {f"bastion/w{w}:{i}" for w in range(workers) for i in range(per_worker)}
    store = Store(root)
    for desc in index.manifests:
        store.read_blob(desc.digest)
    assert not [p for p in os.listdir(root) if p.startswith(".tmp-")]


def test_attached_artifacts_are_listed_by_subject_and_kept_by_gc(store: Store) -> None:
    image = _manifest(store, "image")
    store.tag("bastion/x:1", image)
    empty = store.put_blob(b"{}", "application/vnd.oci.empty.v1+json")
    attached = []
    for kind in ("application/vnd.example.sbom", "application/vnd.example.provenance"):
        manifest = image_manifest(empty, [], subject=image, artifact_type=kind)
        desc = store.put_json(manifest, MEDIA_TYPE_MANIFEST)
        attached.append(
            store.attach(
                Descriptor(desc.media_type, desc.digest, desc.size, artifact_type=kind), image.digest
            )
        )
    store.attach(attached[0], image.digest)  # twice: still one entry
    assert [d.digest for d in store.referrers(image.digest)] == [a.digest for a in attached]
    assert [d.artifact_type for d in store.referrers(image.digest, "application/vnd.example.provenance")] == [
        "application/vnd.example.provenance"
    ]
    assert store.referrers(_manifest(store, "other").digest) == []
    assert set(store.list_tags()) == {"bastion/x:1"}  # artifacts are not tags
    store.gc(grace_seconds=-1)
    for desc in attached:
        assert store.has_blob(desc.digest)
    # And the store is still an OCI layout other tools read: every entry a valid descriptor.
    index = parse_index((store.root / "index.json").read_bytes(), where="index.json")
    assert len(index.manifests) == 3
