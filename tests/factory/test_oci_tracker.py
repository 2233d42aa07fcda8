"""The ``oci-image`` tracker through ``bastion factory plan``: the digest of a tag in Debian's
``docker-registry`` on loopback, a tag moved by a push, and registries answering 500, garbage or a
redirect loop (each one line, the other trackers going on)."""

from __future__ import annotations

import http.server
import json
from pathlib import Path
from typing import Any

from bastion.oci import RegistryClient, Store, push_image
from tests.conftest import run_cli
from tests.registry.conftest import RegistryProcess, make_image
from tests.registry.hostile import HostileRegistry, hostile_registry, send

BASE = "base/debian:12"


def _push(store: Store, registry: RegistryProcess, seed: str) -> str:
    """A new small image under ``BASE`` in ``registry``; its digest."""
    descriptor = make_image(store, layer_sizes=(1000,), seed=seed)
    with RegistryClient(registry.host) as client:
        push_image(store, descriptor.digest, f"{registry.host}/{BASE}", client)
    return descriptor.digest


def _definition(catalog: Path, name: str, body: str) -> None:
    (catalog / f"{name}.yaml").write_text(
        f"name: {name}\ncontents: {{repositories: [{{uri: 'http://127.0.0.1:9/none', suites: [x]}}]}}\n{body}"
    )


def _tracks(image: str, var: str, value: str) -> str:
    return f"  - {{kind: oci-image, image: '{image}', vars: {{{var}: {{value: '{value}'}}}}}}\n"


def _plan(tmp_path: Path) -> tuple[dict[str, Any], str]:
    result = run_cli("factory", "plan", "--catalog", str(tmp_path / "catalog"), "--format", "json",
                     home=tmp_path / "home")  # fmt: skip
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_a_moved_tag_rebuilds_the_images_tracking_it(tmp_path: Path, registry: RegistryProcess) -> None:
    store = Store(tmp_path / "store")
    first = _push(store, registry, "oci-tracker-first")
    other = f"{registry.host}/base/other:1"
    with RegistryClient(registry.host) as client:
        push_image(store, first, other, client)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    _definition(catalog, "runtime", "track:\n" + _tracks(f"{registry.host}/{BASE}", "BASE", first))
    _definition(catalog, "app", "from: runtime\n")
    _definition(catalog, "tools", "track:\n" + _tracks(f"{registry.host}/{BASE}", "DEB", first))
    _definition(catalog, "unrelated", "track:\n" + _tracks(other, "OTHER", first))

    plan, _ = _plan(tmp_path)
    now = {t["tracker"]: (t["now"], t["changes"], t["error"]) for t in plan["trackers"]}
    assert now["runtime/track[0]"] == (first, {}, None)
    assert plan["rebuild"] == []

    moved = _push(store, registry, "oci-tracker-moved")
    assert moved != first
    plan, stderr = _plan(tmp_path)
    trackers = {t["tracker"]: t for t in plan["trackers"]}
    assert trackers["runtime/track[0]"]["now"] == moved
    assert trackers["runtime/track[0]"]["changes"] == {"BASE": [first, moved]}
    assert trackers["tools/track[0]"]["changes"] == {"DEB": [first, moved]}
    assert trackers["unrelated/track[0]"]["now"] == first and trackers["unrelated/track[0]"]["changes"] == {}
    rebuilds = {r["image"]: r["reasons"] for r in plan["rebuild"]}
    assert list(rebuilds) == ["runtime", "tools", "app"]  # dependency order, ties by name
    assert rebuilds["runtime"] == [f"track[0] oci-image: BASE {first} -> {moved}"]
    assert rebuilds["app"] == ["after runtime (from: runtime)"]
    assert "3 images to rebuild" in stderr


def _hostile(handler: http.server.BaseHTTPRequestHandler) -> bool:
    """500 for ``/v2/error/``, a manifest of garbage for ``/v2/garbage/``, a redirect to itself for
    ``/v2/loop/``; anything else is served honestly. The server closes the connection after each
    of these, and says so."""
    path, close = handler.path, {"Connection": "close"}
    if path.startswith("/v2/error/"):
        send(handler, 500, b'{"errors": [{"code": "UNKNOWN"}]}', Content_Type="application/json", **close)
    elif path.startswith("/v2/garbage/"):
        send(handler, 200, b"\x00\xff<html>not a manifest", Content_Type="text/html", **close)
    elif path.startswith("/v2/loop/"):
        send(handler, 307, b"", Location=path, **close)
    else:
        return False
    return True


def test_hostile_registries_fail_one_tracker_each(tmp_path: Path, registry: RegistryProcess) -> None:
    store = Store(tmp_path / "store")
    good = _push(store, registry, "oci-tracker-good")
    hostile = HostileRegistry(attack=_hostile)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    with hostile_registry(hostile):
        trackers = "".join(
            _tracks(f"{hostile.host}/{repo}/image:1", f"V{n}", "1")
            for n, repo in enumerate(("error", "garbage", "loop"))
        )
        trackers += _tracks(f"{registry.host}/{BASE}", "GOOD", good)
        _definition(catalog, "svc", "track:\n" + trackers)
        plan, stderr = _plan(tmp_path)
    errors = {t["tracker"]: t["error"] for t in plan["trackers"] if t["error"]}
    assert set(errors) == {"svc/track[0]", "svc/track[1]", "svc/track[2]"}, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, stderr
    for key, said in [("svc/track[0]", "500"), ("svc/track[1]", "manifest"), ("svc/track[2]", "redirect")]:
        assert said in errors[key] and hostile.host in errors[key], errors[key]
        assert "\n" not in errors[key] and "Traceback" not in stderr
    good_now = next(t for t in plan["trackers"] if t["tracker"] == "svc/track[3]")
    assert (good_now["now"], good_now["changes"]) == (good, {})
    assert plan["rebuild"] == []
