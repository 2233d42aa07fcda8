"""Upstream build pipelines through ``bastion build``: the catalog's hello example compiled from a tarball
served on loopback, with gcc in a build root of verified Debian packages, in the sandbox; its SBOM entry,
its provenance, the build cache; and the bad inputs, each refused in one line naming the step with
nothing stored. Uses the mirror (the build root is cached by its package set after the first run)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, SigningKey, home_sharing_cache, run_cli, serve_directory

pytestmark = [
    pytest.mark.mirror,
    pytest.mark.slow,
    pytest.mark.buildroot,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("bwrap") is None, reason="builds run as root in bwrap"
    ),
]

EXAMPLE = REPO_ROOT / "catalog" / "examples" / "hello"
TARBALL = EXAMPLE / "hello-1.0.tar.gz"


def _definition(tmp: Path, base_url: str, **changes: object) -> Path:
    """The example with the tarball's URL on the test's server and ``changes`` to its build step."""
    data = yaml.safe_load((EXAMPLE / "hello.yaml").read_text())
    step = data["builds"][0]
    step["source"]["url"] = f"{base_url}/hello-1.0.tar.gz"
    step.update(changes)
    path = tmp / "def" / "hello.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _served(tmp: Path) -> Path:
    served = tmp / "served"
    served.mkdir()
    shutil.copyfile(TARBALL, served / TARBALL.name)
    return served


def test_hello_is_compiled_in_the_sandbox_and_proved(tmp_path: Path, cached_home: Path) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    sha256 = hashlib.sha256(TARBALL.read_bytes()).hexdigest()
    with serve_directory(_served(tmp_path)) as url:
        definition = _definition(tmp_path, url)
        result = run_cli("build", str(definition), "--format", "json", home=home)
        assert result.code == 0, result.stderr  # the image test ran the compiled program
        # The attested SPDX SBOM (made at build time: an image's embedded copy cannot add packages).
        sbom = run_cli("attest", "get", "bastion/hello:1.0", "--predicate-type", "https://spdx.dev/Document",
                       home=home)  # fmt: skip
        assert sbom.code == 0, sbom.stderr
        document = json.loads(sbom.stdout)
        document = document.get("predicate", document)
        [hello] = [p for p in document["packages"] if p["name"] == "hello"]
        purl = next(r["referenceLocator"] for r in hello["externalRefs"] if r["referenceType"] == "purl")
        # package-url spec: pkg:generic with the checksum and download_url qualifiers.
        assert purl.startswith("pkg:generic/hello@1.0?") and f"checksum=sha256:{sha256}" in purl
        assert "download_url=http" in purl
        assert {"algorithm": "SHA256", "checksumValue": sha256} in hello["checksums"]
        # The download location (spdx-tools' check takes no loopback address: CycloneDX's reference).
        bom = run_cli("attest", "get", "bastion/hello:1.0", "--predicate-type", "https://cyclonedx.org/bom/v1.6",
                      home=home)  # fmt: skip
        assert bom.code == 0, bom.stderr
        document = json.loads(bom.stdout)
        document = document.get("predicate", document)
        [component] = [c for c in document["components"] if c["name"] == "hello"]
        assert component["purl"] == purl
        assert {"type": "distribution", "url": f"{url}/hello-1.0.tar.gz"} in component["externalReferences"]
        provenance = run_cli("attest", "get", "bastion/hello:1.0", "--predicate-type",
                             "https://slsa.dev/provenance/v1", home=home)  # fmt: skip
        assert provenance.code == 0, provenance.stderr
        predicate = json.loads(provenance.stdout)
        predicate = predicate.get("predicate", predicate)
        resolved = predicate["buildDefinition"]["resolvedDependencies"]
        assert any(
            d["digest"]["sha256"] == sha256 and d["uri"].endswith("hello-1.0.tar.gz") for d in resolved
        )
        assert any(d.get("name", "").startswith("gcc") for d in resolved)  # the build root, by digest
    kept = list((home / "cache" / "builds").iterdir())
    assert any((k / "outputs.json").is_file() for k in kept)
    # The server is gone: an unchanged build takes its outputs from the build cache, not the network.
    again = run_cli("build", str(definition), "--no-cache", "--format", "json", home=home)
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)[0]["digest"] == json.loads(result.stdout)[0]["digest"]  # same bytes


def _refused(tmp: Path, home: Path, definition: Path) -> str:
    result = run_cli("build", str(definition), home=home)
    assert result.code in (1, 2), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 1 and "build hello" in lines[-1], result.stderr
    images = run_cli("images", home=home)
    assert "bastion/hello" not in images.stdout  # nothing stored or tagged
    return lines[-1]


def test_bad_builds_are_refused_naming_the_step(
    tmp_path: Path, cached_home: Path, test_key: SigningKey
) -> None:
    home = home_sharing_cache(tmp_path, cached_home)
    builds = home / "cache" / "builds"
    before = set(builds.iterdir()) if builds.is_dir() else set()
    with serve_directory(_served(tmp_path)) as url:
        port = url.rsplit(":", 1)[1]
        cases: list[tuple[dict[str, object], str]] = [
            ({"source": {"url": f"{url}/hello-1.0.tar.gz", "sha256": "0" * 64}}, "SHA256"),
            # The build tries to fetch from the test's own server: the sandbox has no network.
            ({"commands": [f"perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => q(127.0.0.1:{port})) "
                           "or die qq(no network: $@\\n)'"]}, "no network"),
            ({"commands": ["make", "cp hello /usr/bin/hello"]}, "Read-only file system"),
            ({"commands": ["make", "ln -s /etc/shadow /build/out/escape"],
              "outputs": [{"path": "out/escape", "to": "/usr/local/bin/hello"}]}, "symbolic link"),
            ({"outputs": [{"path": "out/usr/local/bin/nothing", "to": "/usr/local/bin/hello"}]}, "is missing"),
        ]  # fmt: skip
        for number, (changes, expected) in enumerate(cases):
            case = tmp_path / f"case{number}"
            line = _refused(case, home, _definition(case, url, **changes))
            assert expected in line, line
        # A detached signature that does not verify: made by the test key over other bytes.
        served = tmp_path / "served"
        (served / "other").write_bytes(b"not the tarball")
        subprocess.run(["gpg", "--homedir", str(test_key.gnupghome), "--batch", "--yes", "--local-user",
                        test_key.fingerprint, "--detach-sign", "-o", str(served / "hello-1.0.tar.gz.sig"),
                        str(served / "other")], check=True, capture_output=True)  # fmt: skip
        case = tmp_path / "signed"
        definition = _definition(case, url, source={"url": f"{url}/hello-1.0.tar.gz",
                                                     "signature": f"{url}/hello-1.0.tar.gz.sig",
                                                     "keyring": "upstream.gpg"})  # fmt: skip
        shutil.copyfile(test_key.keyring, definition.parent / "upstream.gpg")
        line = _refused(case, home, definition)
        assert "signature does not verify" in line, line
    assert (set(builds.iterdir()) if builds.is_dir() else set()) == before  # no build's outputs kept
