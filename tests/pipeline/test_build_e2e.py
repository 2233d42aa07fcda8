"""The main job through the real command line, on real packages."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

from bastion.oci import host_platform

pytestmark = [pytest.mark.mirror, pytest.mark.slow]


def _copy_definition(name: str, tmp: Path) -> Path:
    target = tmp / name / f"{name}.yaml"
    target.parent.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "catalog" / name / f"{name}.yaml", target)
    return target


@pytest.fixture(scope="module")
def python_runtime(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> tuple[Path, Path]:
    """The python runtime image for amd64, built once into a fresh store sharing the test cache."""
    tmp = tmp_path_factory.mktemp("python")
    definition = _copy_definition("python", tmp)
    home = tmp / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    result = run_cli("build", str(definition), "--variant", "runtime", "--platform", "linux/amd64", home=home)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("bastion/python:3.11 sha256:"), result.stdout
    return definition, home


def test_two_locked_builds_from_empty_stores_give_the_same_index_digest(
    tmp_path: Path, cached_home: Path
) -> None:
    definition = _copy_definition("static", tmp_path)
    lock_home = tmp_path / "lock-home"
    assert run_cli("lock", str(definition), home=lock_home).code == 0
    digests = []
    for run in range(2):
        home = tmp_path / f"home{run}"  # empty store and empty cache: nothing shared but the lock
        result = run_cli("build", str(definition), "--locked", "--format", "json", home=home)
        assert result.code == 0, result.stderr
        (built,) = json.loads(result.stdout)
        assert set(built["platforms"]) == {"linux/amd64", "linux/arm64"}
        digests.append(built["digest"])
    assert digests[0] == digests[1]


def test_runtime_image_is_hardened_and_runs_as_nonroot(python_runtime: tuple[Path, Path]) -> None:
    _, home = python_runtime
    inspected = json.loads(run_cli("inspect", "bastion/python:3.11", home=home).stdout)
    (platform,) = inspected["platforms"]
    config = platform["config"]["config"]
    assert config["User"] == "65532"
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in config["Env"]
    assert config["Entrypoint"] == ["/usr/bin/python3.11"]
    layers = platform["manifest"]["layers"]
    assert 2 <= len(layers) <= 8


def test_exported_image_reads_with_skopeo_and_umoci(
    python_runtime: tuple[Path, Path], tmp_path: Path
) -> None:
    if not (shutil.which("skopeo") and shutil.which("umoci")):
        pytest.skip("skopeo and umoci are installed by the README's test command")
    _, home = python_runtime
    out = tmp_path / "oci"
    result = run_cli(
        "export", "bastion/python:3.11", f"oci-dir://{out}:3.11", "--platform", "linux/amd64", home=home
    )
    assert result.code == 0, result.stderr
    raw = subprocess.run(["skopeo", "inspect", f"oci:{out}:3.11"], capture_output=True, text=True, check=True)
    assert json.loads(raw.stdout)["Architecture"] == "amd64"
    subprocess.run(
        ["skopeo", "copy", f"oci:{out}:3.11", f"oci:{tmp_path / 'copy'}:3.11"],
        capture_output=True,
        check=True,
    )
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{out}:3.11", str(bundle)],
        capture_output=True,
        check=True,
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "usr" / "bin" / "python3.11").is_file()
    assert not (rootfs / "usr" / "bin" / "sh").exists() and not (rootfs / "bin" / "sh").exists()
    assert not (rootfs / "usr" / "bin" / "dpkg").exists() and not (rootfs / "usr" / "bin" / "apt").exists()
    assert (rootfs / "var" / "lib" / "dpkg" / "status.d" / "python3.11").is_file()
    passwd = (rootfs / "etc" / "passwd").read_text()
    assert "nonroot:x:65532:65532" in passwd
    setuid = [
        p for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_mode & 0o6000
    ]
    assert setuid == []
    docker = tmp_path / "image.tar"
    result = run_cli(
        "export", "bastion/python:3.11", f"docker-archive://{docker}", "--platform", "linux/amd64", home=home
    )
    assert result.code == 0, result.stderr
    subprocess.run(["skopeo", "inspect", f"docker-archive:{docker}"], capture_output=True, check=True)


def test_failing_image_test_fails_the_build_and_names_the_test(tmp_path: Path, cached_home: Path) -> None:
    definition = _copy_definition("static", tmp_path)
    definition.write_text(
        definition.read_text() + "  - {name: impossible, file: /etc/passwd, contains: no-such-account}\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    result = run_cli("build", str(definition), "--platform", "linux/amd64", home=home)
    assert result.code == 1, result.stderr
    assert "image test 'impossible' failed" in result.stderr
    listing = run_cli("images", home=home)
    assert "bastion/static" not in listing.stdout
    # The package layers written while the tests ran were never committed: no blob, no temp file.
    blobs = home / "store" / "blobs" / "sha256"
    assert not blobs.exists() or not [p for p in blobs.iterdir() if _is_gzip(p)]


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _fresh_home(tmp_path: Path, cached_home: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    return home


def test_nginx_serves_on_8080_as_nonroot_and_a_wrong_page_fails_the_build(
    tmp_path: Path, cached_home: Path
) -> None:
    definition = _copy_definition("nginx", tmp_path)
    shutil.copyfile(REPO_ROOT / "catalog/nginx/nginx.lock.json", definition.with_suffix(".lock.json"))
    home = _fresh_home(tmp_path, cached_home)
    built = run_cli("build", str(definition), "--locked", "--platform", "linux/amd64", home=home)
    assert built.code == 0, built.stderr
    assert built.stdout.startswith("bastion/nginx:1.22 sha256:"), built.stdout
    image = json.loads(run_cli("inspect", "bastion/nginx:1.22", home=home).stdout)["platforms"][0]
    config = image["config"]["config"]
    assert config["User"] == "65532"
    assert config["ExposedPorts"] == {"8080/tcp": {}}

    # The same image with a page that is not there: the HTTP test really fetched and compared.
    definition.write_text(definition.read_text().replace('"Welcome to nginx!"', '"Welcome to apache!"'))
    failed = run_cli("build", str(definition), "--platform", "linux/amd64", home=home)
    assert failed.code == 1, failed.stderr
    assert "image test 'serves-index-on-8080' failed" in failed.stderr
    assert "Welcome to apache!" in failed.stderr


def test_structure_tests_run_for_other_platforms_without_emulation(tmp_path: Path, cached_home: Path) -> None:
    other = "linux/arm64" if str(host_platform()) == "linux/amd64" else "linux/amd64"
    definition = _copy_definition("static", tmp_path)
    definition.write_text(
        definition.read_text() + "  - {name: impossible, file: /etc/passwd, contains: no-such-account}\n"
    )
    result = run_cli("build", str(definition), "--platform", other, home=_fresh_home(tmp_path, cached_home))
    assert result.code == 1, result.stderr
    assert f"static runtime {other}" in result.stderr or other in result.stderr
    assert "image test 'impossible' failed" in result.stderr


def test_a_claimed_profile_that_fails_fails_the_build_and_the_label_says_what_passed(
    tmp_path: Path, cached_home: Path
) -> None:
    definition = _copy_definition("nginx", tmp_path)
    home = _fresh_home(tmp_path, cached_home)
    text = definition.read_text()
    start = text.index("compliance:\n")
    end = text.index("\ntests:\n")
    definition.write_text(text[:start] + text[end + 1 :])  # no waiver for the health check
    # Without tests the rules run in this process; with them, in a child while the tests run.
    for tests in (["--skip-tests"], []):
        failed = run_cli("build", str(definition), "--platform", "linux/amd64", *tests, home=home)
        assert failed.code == 1, failed.stderr
        assert "image_healthcheck" in failed.stderr
        assert "bastion/nginx" not in run_cli("images", home=home).stdout
    definition.write_text(text)  # with the waiver, recorded as an XCCDF override
    built = run_cli("build", str(definition), "--platform", "linux/amd64", home=home)
    assert built.code == 0, built.stderr
    image = json.loads(run_cli("inspect", "bastion/nginx:1.22", home=home).stdout)["platforms"][0]
    assert image["config"]["config"]["Labels"]["dev.bastion.compliance"] == "bastion-container-baseline@1.0.0"
    attestation = run_cli(
        "attest", "get", "bastion/nginx:1.22", "--type", "compliance", "--verify", home=home
    )
    assert attestation.code == 0, attestation.stderr
    (profile,) = json.loads(attestation.stdout)["profiles"]
    assert profile["name"] == "bastion-container-baseline" and profile["summary"]["fail"] == 0
    assert [w["rule"] for w in profile["waivers"]] == ["image_healthcheck"]
