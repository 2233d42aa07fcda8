"""Through ``bastion build``: a definition whose image could not start is refused
before anything is stored; ``annotations`` reach the manifests and the index; a definition's own
account at 65532 takes the built-in ``nonroot``'s place."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import CliResult, home_sharing_cache, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

# catalog/static's packages: no libc, no shell; ca-certificates ships a /bin/sh script.
STATIC = ["base-files", "netbase", "tzdata", "ca-certificates", "media-types", "!awk", "!mawk", "!openssl"]
LD_SO = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"  # an ELF program libc6 ships, runnable alone


def _write(tmp: Path, fields: dict[str, Any]) -> Path:
    """A one-platform runtime definition ``app.yaml`` (written as JSON, which is YAML)."""
    definition = tmp / "defs" / "app.yaml"
    definition.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "name": "app",
        "image": "bastion/app",
        "tags": ["1"],
        "platforms": ["linux/amd64"],
        "contents": {"packages": STATIC},
        **fields,
    }
    definition.write_text(json.dumps(document, indent=1))
    return definition


def _build(definition: Path, home: Path) -> tuple[CliResult, float]:
    started = time.monotonic()
    result = run_cli("build", str(definition), "--no-attest", "--format", "json", home=home)
    return result, time.monotonic() - started


def _stored_blobs(home: Path) -> list[Path]:
    blobs = home / "store" / "blobs" / "sha256"
    return sorted(blobs.iterdir()) if blobs.is_dir() else []


@pytest.fixture
def home(tmp_path: Path, cached_home: Path) -> Path:
    return home_sharing_cache(tmp_path, cached_home)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"contents": {"packages": [*STATIC, "bash"]}, "entrypoint": ["/bin/bash"]},
            "app.yaml: variants.runtime: entrypoint: /bin/bash is not in the image "
            "(runtime hardening removed /usr/bin/bash: shell)",
            id="hardened-shell-entrypoint",
        ),
        pytest.param(
            {"contents": {"packages": [*STATIC, "bash"]}, "cmd": ["bash", "-c", "true"]},
            "app.yaml: variants.runtime: cmd: 'bash' is not found in the image's PATH "
            "'/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' (/usr/bin/bash is not in "
            "the image (runtime hardening removed /usr/bin/bash: shell))",
            id="bare-name-through-path",
        ),
        pytest.param(
            {"entrypoint": ["/usr/sbin/update-ca-certificates"]},
            "variants.runtime: entrypoint: the '#!' interpreter of /usr/sbin/update-ca-certificates: "
            "/bin/sh is not in the image (no /usr/bin/sh)",
            id="script-without-its-interpreter",
        ),
        pytest.param(
            {
                "entrypoint": ["/app/run"],
                "paths": [{"type": "file", "path": "/app/run", "content": "#!/usr/bin/env x\n"}],
            },
            "variants.runtime: entrypoint: /app/run is not executable in the image (mode 0644)",
            id="not-executable",
        ),
        pytest.param(
            {
                "entrypoint": ["/app/run"],
                "paths": [
                    {"type": "symlink", "path": "/app/run", "target": "loop"},
                    {"type": "symlink", "path": "/app/loop", "target": "run"},
                ],
            },
            "variants.runtime: entrypoint: /app/run is not in the image (too many symlinks at /app/",
            id="symlink-loop",
        ),
        pytest.param(
            {"cmd": ["/etc"]},
            "variants.runtime: cmd: /etc is a dir in the image, not a program",
            id="directory",
        ),
        pytest.param(
            {"accounts": {"run-as": "www-data"}},
            "app.yaml: variants.runtime: accounts.run-as: user 'www-data' is not in the image's /etc/passwd",
            id="unknown-user",
        ),
        pytest.param(
            {"accounts": {"run-as": "65532:web"}},
            "variants.runtime: accounts.run-as: group 'web' is not in the image's /etc/group",
            id="unknown-group",
        ),
        pytest.param(
            {"work-dir": "/srv/app"},
            "app.yaml: variants.runtime: work-dir: /srv/app is not in the image (no /srv)",
            id="missing-work-dir",
        ),
        pytest.param(
            {"work-dir": "/etc/passwd"},
            "variants.runtime: work-dir: /etc/passwd is a file in the image, not a directory",
            id="work-dir-is-a-file",
        ),
    ],
)
def test_an_image_that_could_not_start_is_refused_and_nothing_is_stored(
    tmp_path: Path, home: Path, fields: dict[str, Any], message: str
) -> None:
    result, elapsed = _build(_write(tmp_path, fields), home)
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _stored_blobs(home) == []  # refused before any layer was written
    assert elapsed < 120


def test_a_reserved_annotation_key_is_refused_with_its_line(tmp_path: Path, home: Path) -> None:
    definition = _write(tmp_path, {"annotations": {"org.opencontainers.image.ref.name": "latest"}})
    result, elapsed = _build(definition, home)
    assert result.code == 2, result.stderr
    assert "app.yaml:" in result.stderr and "annotations" in result.stderr
    assert "org.opencontainers.image.ref.name is the image layout's tag" in result.stderr
    assert elapsed < 60


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> tuple[Path, dict[str, Any]]:
    """An image with its own account at 65532, started through PATH and a symlink, with annotations."""
    tmp = tmp_path_factory.mktemp("app")
    home = home_sharing_cache(tmp, cached_home)
    fields = {
        "contents": {"packages": [*STATIC, "libc6"]},
        "accounts": {"users": [{"name": "nginx", "uid": 65532, "gid": 65532}], "run-as": "nginx"},
        "work-dir": "/home/nginx",
        "entrypoint": ["start"],
        "paths": [{"type": "symlink", "path": "/usr/local/bin/start", "target": f"../../..{LD_SO}"}],
        "annotations": {
            "org.opencontainers.image.source": "https://example.org/app.git",
            "com.example.team": "platform",
            "com.example.dropped": "by the variant",
        },
        "variants": {
            "runtime": {"annotations": {"com.example.variant": "runtime", "com.example.dropped": None}}
        },
        "compliance": {
            "waivers": [{"rule": "image_healthcheck", "reason": "a test image: nothing to probe"}]
        },
        "tests": [
            {
                "name": "runs-as-nginx",
                "command": ["/usr/local/bin/start", "--help"],
                "stdout-contains": "ld.so",
            }
        ],
    }
    result, _ = _build(_write(tmp, fields), home)
    assert result.code == 0, result.stderr
    inspected = run_cli("inspect", "bastion/app:1", home=home)
    assert inspected.code == 0, inspected.stderr
    return home, json.loads(inspected.stdout)


ANNOTATIONS = {
    "org.opencontainers.image.source": "https://example.org/app.git",
    "com.example.team": "platform",
    "com.example.variant": "runtime",
}


def test_annotations_are_on_the_index_and_every_manifest_and_inspect_shows_them(
    built: tuple[Path, dict[str, Any]],
) -> None:
    _, inspected = built
    assert inspected["document"]["annotations"] == ANNOTATIONS
    assert inspected["annotations"] == ANNOTATIONS
    (platform,) = inspected["platforms"]
    assert platform["manifest"]["annotations"] == ANNOTATIONS
    assert platform["annotations"] == ANNOTATIONS


def test_a_program_found_through_path_and_a_symlink_starts(built: tuple[Path, dict[str, Any]]) -> None:
    _, inspected = built
    config = inspected["platforms"][0]["config"]["config"]
    assert (config["Entrypoint"], config["User"], config["WorkingDir"]) == (["start"], "nginx", "/home/nginx")


def test_an_own_account_at_65532_replaces_nonroot(built: tuple[Path, dict[str, Any]]) -> None:
    home, inspected = built
    manifest = inspected["platforms"][0]["manifest"]
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = home / "store" / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read_bytes()))) as tar:
            for member in tar.getmembers():
                if member.name in ("etc/passwd", "etc/group", "home/nginx", "home/nonroot"):
                    extracted = tar.extractfile(member) if member.isfile() else None
                    files[member.name] = extracted.read() if extracted else f"{member.uid}".encode()
    assert b"nginx:x:65532:65532:nginx:/home/nginx:/usr/sbin/nologin\n" in files["etc/passwd"]
    assert b"nonroot" not in files["etc/passwd"]
    assert b"nginx:x:65532:\n" in files["etc/group"] and b"nonroot" not in files["etc/group"]
    assert files["home/nginx"] == b"65532" and "home/nonroot" not in files
