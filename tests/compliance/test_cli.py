"""The ``bastion compliance`` command through the real command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.compliance.crafted import clean_image
from tests.conftest import run_cli


def test_cli_exit_code_on_a_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    image = clean_image(tmp_path / "rootfs")
    profile = tmp_path / "fs.yaml"
    # fs:// has no image config and owners from lstat: leave out what a directory cannot show.
    profile.write_text(
        "name: fs\nversion: '1'\nextends: default\n"
        "disable: [image_user_nonroot, image_healthcheck, image_provenance_labels, files_home_dirs_owned]\n"
    )
    args = ["compliance", f"fs://{image.root}", "--profile", str(profile), "--exit-code"]
    clean = run_cli(*args, home=home)
    assert clean.code == 0, clean.stderr
    (image.root / "srv/open").write_text("x")
    (image.root / "srv/open").chmod(0o666)
    failed = run_cli(*args, home=home)
    assert failed.code == 1, failed.stderr
    assert "files_no_world_writable" in failed.stderr
    report = run_cli(*args[:-1], "--format", "json", home=home)
    assert report.code == 0, report.stderr  # without --exit-code, findings are data, not an error
    rules = {r["id"].rsplit("_rule_", 1)[-1]: r for r in json.loads(report.stdout)["rules"]}
    assert rules["files_no_world_writable"]["result"] == "fail"
    assert "/srv/open" in json.dumps(rules["files_no_world_writable"])


def test_cli_bad_profile_is_an_input_error(tmp_path: Path) -> None:
    image = clean_image(tmp_path / "rootfs")
    profile = tmp_path / "bad.yaml"
    profile.write_text("name: bad\nversion: '1'\nrules:\n  - {id: no_such_rule}\n")
    result = run_cli("compliance", f"fs://{image.root}", "--profile", str(profile), home=tmp_path / "home")
    assert result.code == 2, result.stderr
    assert result.stderr.startswith("error:") and "bad.yaml" in result.stderr


def test_cli_fails_an_image_whose_openssl_finds_no_ca_without_its_environment(tmp_path: Path) -> None:
    """The image sets SSL_CERT_FILE, but OpenSSL started without that environment
    reads only its OPENSSLDIR, which holds no CA: ``crypto_ca_bundle`` fails, naming the file."""
    home = tmp_path / "home"
    image = clean_image(tmp_path / "rootfs")
    image.remove("/usr/lib/ssl/cert.pem")
    profile = tmp_path / "tls.yaml"
    profile.write_text("name: tls\nversion: '1'\nrules:\n  - {id: crypto_ca_bundle}\n")
    args = ["compliance", f"fs://{image.root}", "--profile", str(profile), "--exit-code"]
    started = time.monotonic()
    failed = run_cli(*args, home=home)
    assert time.monotonic() - started < 60
    assert failed.code == 1, failed.stderr
    assert "crypto_ca_bundle" in failed.stderr
    report = run_cli(*args[:-1], "--format", "json", home=home)
    assert report.code == 0, report.stderr
    (rule,) = [r for r in json.loads(report.stdout)["rules"] if r["id"].endswith("_rule_crypto_ca_bundle")]
    assert rule["result"] == "fail"
    assert "no /usr/lib/ssl/cert.pem" in json.dumps(rule)
    image.symlink("/usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt")
    assert run_cli(*args, home=home).code == 0
