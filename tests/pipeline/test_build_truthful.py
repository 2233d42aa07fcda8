"""What the assembled image holds is what its records say, shown on the python
images built and exported through the real command line, read back from their layers.

* The package database (status.d for runtime, status and info/ for dev) lists exactly the files the
  image holds: every listed path exists with its md5, every regular file a package put there is
  listed by exactly one package (files Bastion wrote are in the SBOM instead), conffiles included.
  The dev image's own ``dpkg --verify`` runs as the definition's image test ``dpkg-verify-clean``.
* OpenSSL's defaults find the CA bundle without ``SSL_CERT_FILE``: the build ran the definition's
  image test ``tls-trust-anchors-without-environment`` (python3.11 given an empty environment, in
  the sandbox as 65532), and a definition that breaks the default CA file fails the build.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import REPO_ROOT, run_cli

pytestmark = [pytest.mark.mirror, pytest.mark.slow]

_MAX_HOPS = 40


@dataclass(frozen=True)
class Member:
    kind: str  # file, dir, symlink
    data: bytes = b""
    target: str = ""


Tree = dict[str, Member]


def _home(tmp: Path, cached_home: Path) -> Path:
    home = tmp / "home"
    home.mkdir()
    (home / "cache").symlink_to(cached_home.resolve() / "cache")
    return home


def _definition(tmp: Path, extra: str = "") -> Path:
    target = tmp / "python" / "python.yaml"
    target.parent.mkdir(parents=True)
    target.write_text((REPO_ROOT / "catalog/python/python.yaml").read_text() + extra)
    return target


def _layers(layout: Path) -> Tree:
    """The image's files, layers applied in order (a build writes no whiteouts)."""

    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    tree: Tree = {}
    for layer in json.loads(blob(entry["digest"]).read_text())["layers"]:
        with tarfile.open(blob(layer["digest"]), "r:gz") as tar:
            for info in tar:
                path = info.name.removeprefix("./").strip("/")
                if info.isfile():
                    stream = tar.extractfile(info)
                    assert stream is not None
                    tree[path] = Member("file", stream.read())
                elif info.islnk():
                    tree[path] = tree[info.linkname.removeprefix("./")]
                elif info.issym():
                    tree[path] = Member("symlink", target=info.linkname)
                elif info.isdir():
                    tree[path] = Member("dir")
    return tree


def _resolve(tree: Tree, path: str) -> str | None:
    """``path`` with the symlinks of its directories followed inside the image (not its last part)."""
    pending = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        here = "/".join([*resolved, part])
        member = tree.get(here)
        if member is None:
            return None
        if member.kind == "symlink" and pending:
            hops += 1
            assert hops <= _MAX_HOPS, path
            resolved = [] if member.target.startswith("/") else resolved
            pending[:0] = [p for p in member.target.split("/") if p not in ("", ".")]
            continue
        resolved.append(part)
    return "/".join(resolved)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, cached_home: Path) -> dict[str, Tree]:
    """Both python variants for amd64, built (image tests run) into a fresh store and exported."""
    tmp = tmp_path_factory.mktemp("truthful")
    home = _home(tmp, cached_home)
    built = run_cli("build", str(_definition(tmp)), "--platform", "linux/amd64", home=home)
    assert built.code == 0, built.stderr
    trees = {}
    for variant, reference in (("runtime", "bastion/python:3.11"), ("dev", "bastion/python:3.11-dev")):
        out = tmp / variant
        exported = run_cli(
            "export",
            reference,
            f"oci-dir://{out}:x",
            "--platform",
            "linux/amd64",
            "--no-attestations",
            home=home,
        )
        assert exported.code == 0, exported.stderr
        trees[variant] = _layers(out)
    return trees


def _fields(stanza: str) -> dict[str, str]:
    return dict(re.findall(r"(?m)^([A-Za-z0-9-]+):[ \t]*(.*(?:\n[ \t].*)*)", stanza))


def _records(tree: Tree) -> dict[str, tuple[dict[str, str], str, list[str] | None]]:
    """package -> (status fields, md5sums, .list paths or None for status.d) as the image records them."""
    text = lambda path: tree[path].data.decode()  # noqa: E731
    records: dict[str, tuple[dict[str, str], str, list[str] | None]] = {}
    if "var/lib/dpkg/status" in tree:
        for stanza in text("var/lib/dpkg/status").split("\n\n"):
            fields = _fields(stanza)
            stem = fields["Package"]
            if fields.get("Multi-Arch") == "same":
                stem += f":{fields['Architecture']}"
            info = f"var/lib/dpkg/info/{stem}"
            sums = text(f"{info}.md5sums") if f"{info}.md5sums" in tree else ""
            records[fields["Package"]] = (fields, sums, text(f"{info}.list").splitlines())
        return records
    for path in tree:
        if (match := re.fullmatch(r"var/lib/dpkg/status\.d/([^/]+)", path)) and not path.endswith(".md5sums"):
            sums = tree.get(f"{path}.md5sums")
            records[match.group(1)] = (_fields(text(path)), sums.data.decode() if sums else "", None)
    return records


@pytest.mark.parametrize("variant", ["runtime", "dev"])
def test_package_database_lists_exactly_the_files_the_image_holds(
    images: dict[str, Tree], variant: str
) -> None:
    tree = images[variant]
    records = _records(tree)
    assert len(records) > 30
    owners: dict[str, list[str]] = {}
    problems = []
    for name, (fields, sums, listing) in records.items():
        listed: list[tuple[str, str]] = []
        for line in sums.splitlines():
            md5, path = line.split(None, 1)
            listed.append((path, md5))
        for line in fields.get("Conffiles", "").splitlines()[1:]:
            path, md5 = line.split()[:2]
            listed.append((path, md5))
        for path, md5 in listed:
            where = _resolve(tree, path)
            if where is None or tree[where].kind != "file":
                problems.append(f"{name} lists {path}, which the image does not hold")
            elif hashlib.md5(tree[where].data, usedforsecurity=False).hexdigest() != md5:
                problems.append(f"{name} lists {path} with another md5")
            else:
                owners.setdefault(where, []).append(name)
        problems += [
            f"{name}.list names {p}" for p in listing or () if p != "/." and _resolve(tree, p) is None
        ]
    sbom = json.loads(tree["usr/share/bastion/sbom.spdx.json"].data)
    bastions = {item["fileName"].removeprefix("./") for item in sbom["files"]} | {
        "usr/share/bastion/sbom.spdx.json"
    }
    for path, member in sorted(tree.items()):
        if member.kind != "file":
            continue
        if path in bastions:
            problems += [f"{path} is Bastion's, yet {owners[path]} list it"] if path in owners else []
        elif len(owners.get(path, [])) != 1:
            problems.append(f"{path} is listed by {owners.get(path, [])}, not by exactly one package")
    assert problems == [], "\n".join(problems[:50])
    assert owners["etc/services"] == ["netbase"]  # a conffile, recorded with its md5


def test_openssl_default_paths_lead_to_the_ca_bundle_and_the_sbom_says_why(images: dict[str, Tree]) -> None:
    for variant, tree in images.items():
        assert tree["usr/lib/ssl/cert.pem"] == Member(
            "symlink", target="/etc/ssl/certs/ca-certificates.crt"
        ), variant
        assert tree["usr/lib/ssl/certs"] == Member("symlink", target="/etc/ssl/certs"), variant
        if "etc/ssl/openssl.cnf" not in tree:
            # No openssl package (runtime): Bastion made the links, none dangling, and the SBOM says why.
            assert "usr/lib/ssl/openssl.cnf" not in tree, variant
            sbom = json.loads(tree["usr/share/bastion/sbom.spdx.json"].data)
            origins = {item["fileName"]: item["comment"] for item in sbom["files"]}
            assert "OpenSSL's default CA file" in origins["./usr/lib/ssl/cert.pem"], variant
            assert "OpenSSL's default CA directory" in origins["./usr/lib/ssl/certs"], variant
        else:  # the dev image carries the openssl package, whose own links these are
            assert tree["usr/lib/ssl/openssl.cnf"] == Member("symlink", target="/etc/ssl/openssl.cnf"), (
                variant
            )
    # The image tests that proved it in the sandbox are the definition's, and the build above ran them.
    definition = (REPO_ROOT / "catalog/python/python.yaml").read_text()
    assert "name: tls-trust-anchors-without-environment" in definition
    assert "name: dpkg-verify-clean" in definition


def test_a_default_ca_file_leading_nowhere_fails_the_build(tmp_path: Path, cached_home: Path) -> None:
    """The image test and the compliance rule are real checks: a definition that points OpenSSL's
    default CA file at nothing fails its build (exit 1), naming what failed."""
    home = _home(tmp_path, cached_home)
    definition = _definition(
        tmp_path,
        "paths:\n  - {type: symlink, path: /usr/lib/ssl/cert.pem, target: /etc/ssl/certs/missing.crt}\n",
    )
    started = time.monotonic()
    result = run_cli("build", str(definition), "--variant", "runtime", "--platform", "linux/amd64", home=home)
    assert time.monotonic() - started < 600
    assert result.code == 1, result.stderr
    assert "tls-trust-anchors-without-environment" in result.stderr or "crypto_ca_bundle" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_definition_path_in_the_package_database_is_refused(tmp_path: Path, cached_home: Path) -> None:
    home = _home(tmp_path, cached_home)
    definition = _definition(
        tmp_path,
        "paths:\n  - {type: file, path: /var/lib/dpkg/status.d/python3.11, content: 'Package: fake\\n'}\n",
    )
    result = run_cli("build", str(definition), "--variant", "runtime", "--platform", "linux/amd64", home=home)
    assert result.code == 2, result.stderr
    assert "/var/lib/dpkg/status.d/python3.11" in result.stderr and "dpkg database" in result.stderr
    assert "Traceback" not in result.stderr
    shutil.rmtree(home / "store", ignore_errors=True)
