"""Reference parsing, registry-vs-local names, WWW-Authenticate parsing and credential lookup."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bastion.errors import InputError
from bastion.oci import Credentials, Reference, is_registry_reference, parse_reference
from bastion.oci._auth import Challenge, find_credentials, parse_challenges

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry.example:5000/repo/name:tag", Reference("registry.example:5000", "repo/name", "tag")),
        (f"registry.example/repo@{DIGEST}", Reference("registry.example", "repo", None, DIGEST)),
        (f"localhost:5000/x:1@{DIGEST}", Reference("localhost:5000", "x", "1", DIGEST)),
        ("localhost/x", Reference("localhost", "x")),
        ("127.0.0.1:5000/a/b/c", Reference("127.0.0.1:5000", "a/b/c")),
        ("[::1]:5000/x:v1.2-rc_3", Reference("[::1]:5000", "x", "v1.2-rc_3")),
        ("registry://reg.example/bastion/python:3.11", Reference("reg.example", "bastion/python", "3.11")),
        ("registry://myhost/repo", Reference("myhost", "repo")),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    ref = parse_reference(text)
    assert ref == expected
    assert str(ref) == text.removeprefix("registry://")


def test_reference_parts() -> None:
    ref = parse_reference("registry.example:5000/repo:tag")
    assert (ref.hostname, ref.port, ref.ref) == ("registry.example", 5000, "tag")
    assert parse_reference("registry.example/repo").port is None
    assert parse_reference("registry.example/repo").ref == "latest"
    assert parse_reference(f"registry.example/repo:t@{DIGEST}").ref == DIGEST


@pytest.mark.parametrize(
    "text",
    [
        "registry.example",
        "registry.example/",
        "registry.example/Upper",
        "registry.example/repo:bad tag",
        "registry.example/repo@sha256:short",
        "registry.example/repo:" + "t" * 129,
        "bad_host:5000/x",
        "python:3.11",
        "bastion/python:3.11",
    ],
)
def test_parse_reference_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_reference(text)


@pytest.mark.parametrize(
    ("text", "registry"),
    [
        ("registry.example:5000/repo:tag", True),
        ("localhost/x", True),
        ("localhost:5000/x", True),
        ("registry://host/repo:tag", True),
        ("bastion/python:3.11", False),
        ("python:3.11", False),
        ("python", False),
        ("oci-dir:///tmp/x:tag", False),
        ("sbom://file.json", False),
        (f"bastion/python@{DIGEST}", False),
    ],
)
def test_is_registry_reference(text: str, registry: bool) -> None:
    assert is_registry_reference(text) is registry


def test_parse_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:samalba/my-app:pull,push repository:other:pull",error="insufficient_scope"'
    )
    [bearer] = parse_challenges([header])
    assert bearer == Challenge(
        "bearer",
        {
            "realm": "https://auth.example/token",
            "service": "registry.example",
            "scope": "repository:samalba/my-app:pull,push repository:other:pull",
            "error": "insufficient_scope",
        },
    )
    both = parse_challenges(['Basic realm="a \\"quoted\\" realm", Bearer realm=tok,service=s'])
    assert [c.scheme for c in both] == ["basic", "bearer"]
    assert both[0].params == {"realm": 'a "quoted" realm'}
    assert both[1].params == {"realm": "tok", "service": "s"}


def test_credentials_lookup_order(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"docker-user:pa:ss").decode()
    config.write_text(json.dumps({"auths": {"https://reg.example:5000/v1/": {"auth": auth}}}))
    env = {"BASTION_REGISTRY_USERNAME": "env-user", "BASTION_REGISTRY_PASSWORD": "env-pass"}
    given = Credentials("given", "x")
    assert find_credentials("reg.example:5000", explicit=given, environ=env, docker_config=config) == given
    assert find_credentials("reg.example:5000", environ=env, docker_config=config) == Credentials(
        "env-user", "env-pass"
    )
    assert find_credentials("reg.example:5000", environ={}, docker_config=config) == Credentials(
        "docker-user", "pa:ss"
    )
    assert find_credentials("other.example", environ={}, docker_config=config) is None
    assert find_credentials("x.example", environ={}, docker_config=tmp_path / "missing.json") is None
    assert "pa:ss" not in repr(Credentials("u", "pa:ss"))
    config.write_text(json.dumps({"auths": {"reg.example:5000": {"auth": "not base64!"}}}))
    with pytest.raises(InputError, match="auth"):
        find_credentials("reg.example:5000", environ={}, docker_config=config)
