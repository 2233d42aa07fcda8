"""Image documents: shapes from the OCI image spec, one canonical serialisation."""

from __future__ import annotations

import json

import pytest

from bastion.errors import IntegrityError, InternalError
from bastion.oci import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    HistoryEntry,
    Platform,
    RuntimeConfig,
    canonical_json,
    image_config,
    image_index,
    image_manifest,
    parse_index,
    parse_manifest,
    rfc3339,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical_json({"b": 1, "a": {"d": [1, 2], "c": "\u00e9"}})
        == '{"a":{"c":"\u00e9","d":[1,2]},"b":1}'.encode()
    )


def test_image_config() -> None:
    runtime = RuntimeConfig(
        user="65532",
        env=("PATH=/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        entrypoint=("/usr/bin/python3",),
        cmd=("-V",),
        working_dir="/home/nonroot",
        exposed_ports=("8080/tcp", "53/udp"),
        labels={"org.opencontainers.image.source": "https://example.org"},
        stop_signal="SIGTERM",
    )
    config = image_config(Platform.parse("linux/arm64"), runtime, [D1, D2], source_date_epoch=1_700_000_000)
    assert config["architecture"] == "arm64" and config["variant"] == "v8" and config["os"] == "linux"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [D1, D2]}
    assert len(config["history"]) == 2
    assert config["config"] == {
        "User": "65532",
        "Env": list(runtime.env),
        "Entrypoint": ["/usr/bin/python3"],
        "Cmd": ["-V"],
        "WorkingDir": "/home/nonroot",
        "ExposedPorts": {"53/udp": {}, "8080/tcp": {}},
        "Labels": {"org.opencontainers.image.source": "https://example.org"},
        "StopSignal": "SIGTERM",
    }
    amd = image_config(Platform.parse("linux/amd64"), RuntimeConfig(), [], source_date_epoch=0)
    assert "variant" not in amd and amd["config"] == {} and amd["created"] == "1970-01-01T00:00:00Z"


def test_history_must_match_layers() -> None:
    history = [HistoryEntry("layer 1"), HistoryEntry("ENV", empty_layer=True)]
    config = image_config(
        Platform.parse("amd64"), RuntimeConfig(), [D1], source_date_epoch=0, history=history
    )
    assert config["history"][1]["empty_layer"] is True
    with pytest.raises(InternalError):
        image_config(Platform.parse("amd64"), RuntimeConfig(), [D1, D2], source_date_epoch=0, history=history)


def test_manifest_and_index_round_trip() -> None:
    config = Descriptor(MEDIA_TYPE_CONFIG, D1, 10)
    layer = Descriptor(MEDIA_TYPE_LAYER_GZIP, D2, 20)
    doc = image_manifest(config, [layer], annotations={"org.opencontainers.image.created": rfc3339(0)})
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == MEDIA_TYPE_MANIFEST
    manifest = parse_manifest(canonical_json(doc))
    assert manifest.config == config and manifest.layers == (layer,)
    entry = Descriptor(MEDIA_TYPE_MANIFEST, D1, 5, platform=Platform.parse("linux/arm64"))
    index = parse_index(canonical_json(image_index([entry])))
    assert index.media_type == MEDIA_TYPE_INDEX
    assert index.manifests == (entry,)
    assert json.loads(canonical_json(image_index([entry])))["manifests"][0]["platform"] == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
    }


@pytest.mark.parametrize(
    "digest", ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "1" * 128, "1" * 64, ""]
)
def test_descriptor_refuses_digests_that_are_not_sha256_hex(digest: str) -> None:
    with pytest.raises(IntegrityError):
        Descriptor.from_json({"mediaType": MEDIA_TYPE_CONFIG, "digest": digest, "size": 1})


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"schemaVersion":1,"manifests":[]}', b'{"schemaVersion":2}'],
)
def test_malformed_documents_are_refused(data: bytes) -> None:
    with pytest.raises(IntegrityError):
        parse_index(data)
