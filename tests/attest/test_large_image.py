"""Issue 19: a large image (``benchmarks/large``, 317 packages) builds again, and every command that
reads its attestations back accepts them.

Its signed SPDX bundle is more than 4 MiB, the most a manifest may be; the rebuild that reused the
image read every attached bundle with that document limit and stopped with "blob ... is larger than
4194304 bytes". Attestations are now read up to ``BASTION_MAX_ATTESTATION_SIZE`` (default 256 MiB),
and one over it is refused with a one-line error naming it and the variable, never an internal error.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, CliResult, home_sharing_cache, run_cli
from tests.registry.conftest import RegistryProcess, registry  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

IMAGE = "bastion/large:3.11"
PLATFORM = "linux/amd64"
SPDX = "https://spdx.dev/Document"
DOCUMENT_LIMIT = 4 * 1024 * 1024  # what the reuse path read bundles with (distribution spec's manifest size)
# A command that reads attestations back; each is bounded well below the suite's timeout.
SECONDS = 180


@dataclass(frozen=True)
class Built:
    home: Path
    definition: Path
    key: Path  # the public key the build signed with


def _timed(*args: str, home: Path, env: dict[str, str] | None = None) -> CliResult:
    started = time.monotonic()
    result = run_cli(*args, home=home, env=env)
    assert time.monotonic() - started < SECONDS, args
    return result


def _ok(result: CliResult) -> CliResult:
    assert result.code == 0, result.stderr + result.stdout[-2000:]
    return result


def _build(built: Built, env: dict[str, str] | None = None) -> CliResult:
    return run_cli("build", str(built.definition), "--locked", "--format", "json", home=built.home, env=env)


def _cached(result: CliResult) -> bool:
    (variant,) = json.loads(_ok(result).stdout)
    return bool(variant["platforms"][PLATFORM]["cached"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> Built:
    """The large image built once into a fresh home sharing the package cache (a copy of the
    definition, so a lock the build writes never lands in the repository)."""
    tmp = tmp_path_factory.mktemp("large")
    home = home_sharing_cache(tmp, cached_home)
    definition = tmp / "large.yaml"
    shutil.copyfile(REPO_ROOT / "benchmarks/large/large.yaml", definition)
    shutil.copyfile(REPO_ROOT / "benchmarks/large/large.lock.json", tmp / "large.lock.json")
    result = Built(home, definition, home / "keys/bastion.pub")
    assert not _cached(_build(result))
    return result


def test_large_image_rebuilds_and_every_reader_accepts_its_attestations(built: Built, tmp_path: Path) -> None:
    listed = json.loads(_ok(_timed("attest", "list", IMAGE, "--format", "json", home=built.home)).stdout)
    (spdx,) = [a for a in listed["attestations"] if a["predicateType"] == SPDX]
    blob = built.home / "store/blobs/sha256" / spdx["digest"].removeprefix("sha256:")
    assert blob.stat().st_size > DOCUMENT_LIMIT  # the test is about bundles no manifest could be

    started = time.monotonic()
    assert _cached(_build(built))  # the no-op rebuild reads every attached bundle back
    assert time.monotonic() - started < SECONDS

    key = str(built.key)
    got = _ok(_timed("attest", "get", IMAGE, "--type", "spdx", "--verify", "--key", key, home=built.home))
    assert len(got.stdout) > DOCUMENT_LIMIT // 2 and json.loads(got.stdout)
    _ok(_timed("verify", IMAGE, "--key", key, home=built.home))
    layout = f"oci-dir://{tmp_path / 'layout'}"
    _ok(_timed("export", IMAGE, layout, home=built.home))
    verified = _ok(_timed("verify", layout, "--key", key, home=built.home))
    assert f"{PLATFORM} spdx: verified" in verified.stdout


def test_large_image_attestations_through_a_registry(
    built: Built,
    registry: RegistryProcess,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    remote = f"{registry.host}/large/large:3.11"
    key = str(built.key)
    _ok(_timed("push", IMAGE, remote, home=built.home))
    _ok(_timed("verify", remote, "--key", key, home=built.home))
    mirrored = f"{registry.host}/copy/large:3.11"
    _ok(_timed("mirror", remote, mirrored, home=built.home))
    empty = tmp_path / "empty"
    empty.mkdir()
    _ok(_timed("pull", mirrored, "--tag", "local/large:3.11", home=empty))
    _ok(_timed("verify", "local/large:3.11", "--key", key, home=empty))


@pytest.mark.parametrize(
    "command",
    [("attest", "list", IMAGE), ("verify", IMAGE), ("attest", "get", IMAGE, "--type", "spdx"), ("build",)],
)
def test_an_attestation_over_the_configured_limit_is_refused_in_one_line(
    built: Built, command: tuple[str, ...]
) -> None:
    args = (*command, str(built.definition), "--locked") if command == ("build",) else command
    result = _timed(*args, home=built.home, env={"BASTION_MAX_ATTESTATION_SIZE": "1M"})
    assert result.code == 2, result.stderr + result.stdout
    assert "more than the 1,048,576 accepted" in result.stderr
    assert "BASTION_MAX_ATTESTATION_SIZE" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_attestation_limit_is_refused(built: Built) -> None:
    result = _timed("attest", "list", IMAGE, home=built.home, env={"BASTION_MAX_ATTESTATION_SIZE": "lots"})
    assert result.code == 2
    assert "BASTION_MAX_ATTESTATION_SIZE='lots' is not a size" in result.stderr
