"""``bastion factory run --once`` end to end: a tracker sees a new package version, the images that
use it are proposed, built from the host's mirror, tested, signed, pushed to a loopback
docker-registry with their attestations, verified, tagged; a second run does nothing; an image whose
tests fail is not published and ``status`` shows why, with its log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import home_sharing_cache, run_cli
from tests.registry.conftest import RegistryProcess

pytestmark = pytest.mark.mirror

DEFINITION = """\
name: {name}
image: bastion/{name}
tags: ["latest", "netbase-${{NETBASE}}"]
platforms: [linux/amd64]
track:
  - {{kind: debian-package, package: netbase, vars: {{NETBASE: {{value: '6.3'}}}}}}
contents:
  packages: ["netbase=${{NETBASE}}", media-types]
tests:
  - {{name: services, file: /etc/services, contains: "{expect}"}}
"""


# Built on the net image: netbase comes from the base's layers, tzdata is its own.
FROM_NET = """\
name: app
image: bastion/app
from: net
platforms: [linux/amd64]
contents:
  packages: [tzdata]
tests:
  - {name: services, file: /etc/services, contains: "https"}
  - {name: zoneinfo, file: /usr/share/zoneinfo/UTC}
"""


def _catalog(tmp_path: Path, images: dict[str, str]) -> Path:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name, expect in images.items():
        (catalog / f"{name}.yaml").write_text(DEFINITION.format(name=name, expect=expect))
    (catalog / "app.yaml").write_text(FROM_NET)
    return catalog


def test_run_once_rebuilds_publishes_verifies_and_then_does_nothing(
    tmp_path: Path, cached_home: Path, registry: RegistryProcess
) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    catalog = _catalog(tmp_path, {"net": "https", "mime": "domain", "broken": "no such service"})
    env = {"BASTION_FACTORY_REGISTRY": registry.host}
    first = run_cli("factory", "run", "--once", "--catalog", str(catalog), home=home, env=env)
    assert first.code == 0, first.stderr
    outcome = dict(line.split()[:2] for line in first.stdout.splitlines())
    assert outcome == {"app": "done", "broken": "failed", "mime": "done", "net": "done"}, first.stdout
    order = [line.split()[0] for line in first.stdout.splitlines()]
    assert order.index("net") < order.index("app")  # the from: image after the image it starts from
    # The definitions now say what was built: the tracker's value, and a lock holding it.
    assert "value: '6.4'" in (catalog / "net.yaml").read_text()
    lock = json.loads((catalog / "net.lock.json").read_text())
    assert {p["name"]: p["version"] for p in lock["variants"]["runtime"]["linux/amd64"]["packages"]}[
        "netbase"
    ] == "6.4"

    verified = run_cli("verify", f"registry://{registry.host}/bastion/net:latest",
                       "--key", str(home / "keys" / "bastion.pub"), home=home)  # fmt: skip
    assert verified.code == 0, verified.stderr
    status = run_cli("factory", "status", "--format", "json", home=home)
    document = json.loads(status.stdout)
    assert sorted(p["image"] for p in document["publications"]) == ["app", "mime", "net"]
    # The from: image was built on the net image just published, named in its lock by digest.
    (net,) = [p for p in document["publications"] if p["image"] == "net"]
    assert json.loads((catalog / "app.lock.json").read_text())["from"]["digest"] == net["digest"]
    on_net = run_cli("verify", f"registry://{registry.host}/bastion/app:latest",
                     "--key", str(home / "keys" / "bastion.pub"), home=home)  # fmt: skip
    assert on_net.code == 0, on_net.stderr
    (failed,) = [j for j in document["jobs"] if j["status"] == "failed"]
    assert failed["image"] == "broken" and "tests: " in failed["error"] and "services" in failed["error"]
    text = run_cli("factory", "status", home=home).stdout
    assert "job" in text and "tests failed" in text  # the failed job's log is shown
    # Nothing of the broken image was published: no tag of it in the registry.
    refused = run_cli("verify", f"registry://{registry.host}/bastion/broken:latest",
                      "--key", str(home / "keys" / "bastion.pub"), home=home)  # fmt: skip
    assert refused.code != 0

    second = run_cli("factory", "run", "--once", "--catalog", str(catalog), home=home, env=env)
    assert second.code == 0, second.stderr
    assert second.stdout.strip() == "" and "nothing to rebuild" in second.stderr
    history = run_cli("factory", "history", "net", home=home)
    assert "publish: done" in history.stdout and "tags: done" in history.stdout
    assert history.stdout.index("publish: done") < history.stdout.index("tags: done")
