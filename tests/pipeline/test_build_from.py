"""``from:`` builds through the real command line on the host's mirror: an image that starts from
another catalog image's layers (reused by digest) and adds a package, an account and a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import home_sharing_cache, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

BASE = """\
name: small
image: bastion/small
tags: ["1"]
platforms: [linux/amd64]
contents:
  packages: [base-files, netbase, media-types, "!awk", "!mawk"]
accounts:
  users: [{name: app, uid: 1000, gid: 1000}]
  groups: [{name: app, gid: 1000}]
tests:
  - {name: services, file: /etc/services, contains: "https"}
"""

APP = """\
name: app
image: bastion/app
from: small
platforms: [linux/amd64]
contents:
  packages: [base-files, tzdata]
accounts:
  users: [{name: worker, uid: 1001, gid: 1001}]
  groups: [{name: worker, gid: 1001}]
paths:
  - {path: /etc/app.conf, type: file, content: "answer = 42\\n"}
tests:
  - {name: zoneinfo, file: /usr/share/zoneinfo/UTC}
  - {name: base-file, file: /etc/services, contains: "https"}
  - {name: base-account, file: /etc/passwd, contains: "app:x:1000"}
  - {name: own-account, file: /etc/passwd, contains: "worker:x:1001"}
  - {name: own-file, file: /etc/app.conf, contains: "answer"}
  - {name: dpkg-added, file: /var/lib/dpkg/status.d/tzdata, contains: "Package: tzdata"}
  - {name: dpkg-base, file: /var/lib/dpkg/status.d/netbase, contains: "Package: netbase"}
"""


def _catalog(tmp: Path) -> Path:
    catalog = tmp / "catalog"
    for name, text in (("small", BASE), ("app", APP)):
        (catalog / name).mkdir(parents=True)
        (catalog / name / f"{name}.yaml").write_text(text)
    return catalog


def _manifest(home: Path, ref: str) -> dict[str, object]:
    inspected = json.loads(run_cli("inspect", ref, home=home).stdout)
    (platform,) = inspected["platforms"]
    manifest: dict[str, object] = platform["manifest"]
    return manifest


def test_from_image_reuses_the_base_layers_and_adds_a_package(tmp_path: Path, cached_home: Path) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    catalog = _catalog(tmp_path)
    app = catalog / "app" / "app.yaml"

    before = run_cli("build", str(app), home=home)  # the base is not built yet: one line, nothing built
    assert before.code == 2 and "bastion/small:1 is not in the local store" in before.stderr, before.stderr

    base = run_cli("build", str(catalog / "small" / "small.yaml"), home=home)
    assert base.code == 0, base.stderr
    built = run_cli("build", str(app), "--format", "json", home=home)
    assert built.code == 0, built.stderr

    # The lock names the base by digest, and lists the base's packages as its own: not added again.
    lock = json.loads((catalog / "app" / "app.lock.json").read_text())
    index = json.loads(run_cli("inspect", "bastion/small:1", home=home).stdout)
    assert lock["from"] == {
        "image": "small:runtime",
        "reference": "bastion/small:1",
        "digest": index["digest"],
    }
    packages = lock["variants"]["runtime"]["linux/amd64"]["packages"]
    in_base = {p["name"] for p in packages if p.get("base")}
    assert {"base-files", "netbase", "media-types"} <= in_base
    assert "tzdata" in {p["name"] for p in packages} - in_base

    # The layers start with the base's, by digest.
    base_layers = _manifest(home, "bastion/small:1")["layers"]
    app_layers = _manifest(home, "bastion/app:latest")["layers"]
    assert isinstance(base_layers, list) and isinstance(app_layers, list)
    assert app_layers[: len(base_layers)] == base_layers and len(app_layers) > len(base_layers)

    # The image's SBOM (a scan of its layers: the dpkg database the image tests above read in the
    # assembled tree) holds the base's packages and the added one.
    sbom = json.loads(run_cli("sbom", "bastion/app:latest", "--format", "spdx-json", home=home).stdout)
    names = {p["name"] for p in sbom["packages"]}
    assert {"tzdata", "netbase", "base-files"} <= names

    # The provenance names the base image by digest, and the attestations verify.
    provenance = run_cli(
        "attest", "get", "bastion/app:latest", "--predicate-type", "https://slsa.dev/provenance/v1", home=home
    )
    assert provenance.code == 0, provenance.stderr
    base_manifest = run_cli("inspect", "bastion/small:1", home=home)
    assert json.loads(base_manifest.stdout)["platforms"][0]["digest"] in provenance.stdout
    verified = run_cli("verify", "bastion/app:latest", "--key", str(home / "keys" / "bastion.pub"), home=home)
    assert verified.code == 0, verified.stderr

    # Built again from the lock: the same image, taken from the recipe cache.
    again = run_cli("build", str(app), "--locked", "--format", "json", home=home)
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)[0]["digest"] == json.loads(built.stdout)[0]["digest"]
