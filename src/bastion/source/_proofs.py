"""What a source build proves, kept with the local repository it publishes to.

* ``provenance/<source>/<version>_<arch>.sigstore.json``: SLSA Build Provenance v1
  (https://slsa.dev/spec/v1.0/provenance) of the build, an in-toto Statement v1 whose subjects are the
  built ``.deb`` files, signed in a Sigstore bundle v0.3 with the build's key (``--key``, as
  ``bastion build``). ``resolvedDependencies`` name the ``.dsc`` and each file it lists, each patch, and
  every package of the build root, by SHA256 (``docs/provenance.md``, build type
  :data:`bastion.identifiers.SLSA_SOURCE_BUILD_TYPE`).
* ``vex/<source>_<version>_<arch>.openvex.json``: when a patch declares ``fixes``, an OpenVEX v0.2.0
  document stating each vulnerability ``fixed`` in each built package at its exact
  ``+bastion<N>`` version (products are package purls). ``bastion cves`` and ``bastion vex`` read these
  documents from the repository (:func:`bastion.vex.repository_vex`).

An image built from packages of this repository names each package's provenance bundle in its own
provenance (:func:`provenance_references`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from packageurl import PackageURL

from bastion import __version__
from bastion.documents import load_json
from bastion.errors import BastionError
from bastion.identifiers import OPENVEX_ID_BASE, SLSA_BUILDER_ID, SLSA_SOURCE_BUILD_TYPE

if TYPE_CHECKING:
    from bastion.attest import Signer
    from bastion.debian import PackageRecord, SourceRecord

__all__ = ["BuildFacts", "make_proofs", "provenance_references", "source_signer"]

PROVENANCE_DIR = "provenance"
VEX_DIR = "vex"
#: The most bytes a provenance bundle read back for an image's provenance may have.
MAX_BUNDLE_SIZE = 16 << 20
#: The most bundles one source's directory may hold before the lookup stops reading (bounded work).
MAX_BUNDLES = 256


@dataclass(frozen=True)
class BuildFacts:
    """What one source build read and made, as its provenance states it."""

    definition: Path
    source: SourceRecord
    version: str  # <debian version>+bastion<N>
    revision: int
    arch: str
    patches: tuple[tuple[str, str], ...]  # (file name, sha256)
    build_root: tuple[PackageRecord, ...]
    build_root_digest: str
    debs: tuple[tuple[str, str, str], ...]  # (file name, sha256, package name)
    fixes: tuple[tuple[str, tuple[str, ...]], ...]  # (patch file name, the vulnerabilities it fixes)
    source_date_epoch: int
    started_on: str
    finished_on: str


def source_signer(key: str | None, home: Path, warn: Callable[[str], None]) -> Signer:
    """The key a source build signs its provenance with: ``key`` (a key reference, as ``bastion build
    --key`` takes), else the local key ``bastion build`` signs with by default
    (:func:`bastion.attest.local_key`, made on first use)."""
    from bastion.attest import env_password, load_signer, local_key

    if key is None:
        key = str(local_key(home, warn, verifies="the provenance of Bastion's packages"))
    return load_signer(key, env_password)


def _file_version(version: str) -> str:
    """The version as Debian's file names write it: without the epoch (Policy §5.6.12)."""
    return version.split(":", 1)[-1]


def provenance_predicate(facts: BuildFacts) -> dict[str, Any]:
    """The SLSA v1 ``Provenance`` of one source build."""
    record = facts.source
    definition = facts.definition.resolve()
    dependencies: list[dict[str, Any]] = [
        {"uri": record.url(f), "digest": {"sha256": f.sha256}, "name": f.name} for f in record.files
    ]
    dependencies += [
        {"uri": (definition.parent / name).as_uri(), "digest": {"sha256": sha256}, "name": f"patch {name}"}
        for name, sha256 in facts.patches
    ]
    dependencies += [
        {"uri": p.url, "digest": {"sha256": p.sha256}, "name": f"{p.name} {p.version} {p.architecture}"}
        for p in facts.build_root
    ]
    return {
        "buildDefinition": {
            "buildType": SLSA_SOURCE_BUILD_TYPE,
            "externalParameters": {
                "definition": {
                    "path": str(definition),
                    "sha256": hashlib.sha256(definition.read_bytes()).hexdigest(),
                },
                "source": {"name": record.name, "version": record.version, "dsc": record.dsc.sha256},
                "revision": facts.revision,
                "patches": [
                    {"file": name, "sha256": sha256, "fixes": list(dict(facts.fixes).get(name, ()))}
                    for name, sha256 in facts.patches
                ],
            },
            "internalParameters": {
                "architecture": facts.arch,
                "version": facts.version,
                "sourceDateEpoch": facts.source_date_epoch,
                "buildRoot": facts.build_root_digest,
                "suite": {
                    "repository": record.repository,
                    "suite": record.suite,
                    "sources": record.index_sha256,
                },
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": SLSA_BUILDER_ID, "version": {"bastion": __version__}},
            "metadata": {"startedOn": facts.started_on, "finishedOn": facts.finished_on},
        },
    }


def fixed_vex(facts: BuildFacts) -> dict[str, Any] | None:
    """The OpenVEX document stating the patches' ``fixes`` fixed in the built packages; None without any."""
    from bastion.vex import OPENVEX_CONTEXT, validate_openvex

    vulnerabilities: dict[str, list[str]] = {}
    for patch, fixes in facts.fixes:
        for vulnerability in fixes:
            vulnerabilities.setdefault(vulnerability, []).append(patch)
    if not vulnerabilities:
        return None
    arches = {name: name.rsplit("_", 1)[-1].removesuffix(".deb") for name, _, _ in facts.debs}
    products = sorted(
        {
            PackageURL(type="deb", namespace="debian", name=package, version=facts.version,
                       qualifiers={"arch": arches[name]}).to_string()
            for name, _, package in facts.debs
        }
    )  # fmt: skip
    statements = [
        {
            "vulnerability": {"name": vulnerability},
            "products": [{"@id": purl} for purl in products],
            "status": "fixed",
            "status_notes": f"Fixed by Bastion's build {facts.source.name} {facts.version}, which applies "
            f"{', '.join(sorted(patches))}",
        }
        for vulnerability, patches in sorted(vulnerabilities.items())
    ]
    body = json.dumps(statements, sort_keys=True).encode()
    document = {
        "@context": OPENVEX_CONTEXT,
        "@id": f"{OPENVEX_ID_BASE}{hashlib.sha256(body).hexdigest()}",
        "author": "Bastion source build",
        "role": "Document Creator",
        "timestamp": facts.finished_on,
        "version": 1,
        "tooling": f"bastion {__version__}",
        "statements": statements,
    }
    validate_openvex(document, f"source {facts.source.name} {facts.version}: vex")
    return document


def make_proofs(facts: BuildFacts, signer: Signer) -> dict[str, bytes]:
    """The files to keep with the repository (path relative to its root → bytes): the signed provenance
    and, when a patch fixes something, the OpenVEX document."""
    from bastion.attest import PROVENANCE_PREDICATE_TYPE, Subject, make_statement, sign_statement

    subjects = [Subject(name=name, digest={"sha256": sha256}) for name, sha256, _ in facts.debs]
    statement = make_statement(subjects, PROVENANCE_PREDICATE_TYPE, provenance_predicate(facts))
    stem = f"{_file_version(facts.version)}_{facts.arch}"
    files = {f"{PROVENANCE_DIR}/{facts.source.name}/{stem}.sigstore.json": sign_statement(statement, signer)}
    vex = fixed_vex(facts)
    if vex is not None:
        files[f"{VEX_DIR}/{facts.source.name}_{stem}.openvex.json"] = (
            json.dumps(vex, indent=2, sort_keys=True) + "\n"
        ).encode()
    return files


def provenance_references(packages: Iterable[tuple[str, str]]) -> list[tuple[str, str, str | None]]:
    """For an image's provenance: of the packages ``(url, sha256)`` that come from a Bastion repository
    (a ``file:`` URL under ``<root>/pool/<component>/<letter>/<source>/``), the provenance bundle whose
    subjects include that digest, as ``(uri, sha256 of the bundle, name)``. A package without one is
    left out; the bundle is read unverified (the image's own provenance is what gets signed)."""
    found: list[tuple[str, str, str | None]] = []
    for url, sha256 in packages:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            continue
        path = Path(unquote(parsed.path))
        if len(path.parents) < 5 or path.parents[3].name != "pool":
            continue
        directory = path.parents[4] / PROVENANCE_DIR / path.parent.name
        for bundle in _bundles(directory):
            data = _read(bundle)
            if data is not None and sha256 in _subject_digests(data):
                found.append((bundle.as_uri(), hashlib.sha256(data).hexdigest(),
                              f"provenance of {path.name}"))  # fmt: skip
                break
    return found


def _bundles(directory: Path) -> Sequence[Path]:
    try:
        names = sorted(e.name for e in os.scandir(directory) if e.name.endswith(".sigstore.json"))
    except OSError:
        return ()
    return [directory / name for name in names[-MAX_BUNDLES:]][::-1]  # the newest versions first


def _read(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_BUNDLE_SIZE:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _subject_digests(bundle: bytes) -> set[str]:
    """The SHA256 digests of the statement's subjects in a bundle's DSSE envelope (unverified)."""
    import base64

    try:
        document = load_json(bundle, where="provenance bundle", max_bytes=MAX_BUNDLE_SIZE)
        payload = base64.b64decode(document["dsseEnvelope"]["payload"], validate=True)
        statement = load_json(payload, where="provenance statement", max_bytes=MAX_BUNDLE_SIZE)
        return {str(s["digest"]["sha256"]) for s in statement["subject"]}
    except (BastionError, KeyError, TypeError, ValueError):
        return set()
