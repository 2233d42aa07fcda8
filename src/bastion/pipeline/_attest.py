"""Signed attestations a build attaches to each platform image: the SBOM (SPDX 2.3 and CycloneDX
1.6) and SLSA v1 provenance, each an in-toto statement in a Sigstore bundle, stored as an OCI 1.1
artifact whose ``subject`` is the platform manifest (:func:`bastion.attest.attach_bundle`).

Without ``--key`` the build signs with a local key, ``BASTION_HOME/keys/bastion.key``, made on first
use (with a warning naming its public key, which is what consumers must be given), encrypted with
``BASTION_PASSWORD`` (or ``COSIGN_PASSWORD``), else with the empty password as cosign allows.

A rebuild of an unchanged image finds its attestations signed by the same key already attached and
signs nothing: the key's hint comes from the public key file, so the private key is not even
decrypted (scrypt is slow on purpose).
A rebuild that reuses the image but signs with another key, or finds one missing, attaches what that
key has not signed, the compliance predicate included (the caller passes it as ``extra``, from the
recipe-cache record for a reused image: :mod:`bastion.pipeline._cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bastion._clock import rfc3339
from bastion._forked import Forked
from bastion._progress import Progress
from bastion.attest import (
    CVE_SCAN_PREDICATE_TYPE,
    CYCLONEDX_PREDICATE_TYPE,
    OPENVEX_PREDICATE_TYPE,
    PROVENANCE_PREDICATE_TYPE,
    SPDX_PREDICATE_TYPE,
    BuildRecord,
    attach_bundle,
    bundle_key_hint,
    pem_key_hint,
    provenance,
    stored_bundles,
)
from bastion.config import Settings
from bastion.identifiers import ANNOTATION_VEX_STATEMENTS, ANNOTATION_VULN_DATA
from bastion.oci import Descriptor, Store

if TYPE_CHECKING:
    from bastion.attest import Signer
    from bastion.catalog import VexStatement
    from bastion.sbom import Sbom

BUILD_PREDICATES = (SPDX_PREDICATE_TYPE, CYCLONEDX_PREDICATE_TYPE, PROVENANCE_PREDICATE_TYPE)
# The CVE scan and OpenVEX document are attached when a vulnerability database is present.


class BuildSigner:
    """The key a build signs with, loaded (and decrypted) only when something must be signed."""

    def __init__(self, key: str | None, settings: Settings, progress: Progress) -> None:
        self._ref = key
        self._signer: Signer | None = None
        self._hint: str | None = None
        if key is None:
            path = settings.home / "keys" / "bastion.key"
            if not path.is_file():
                from bastion.attest import KeyKind, generate_key_pair, write_key_pair

                path.parent.mkdir(parents=True, exist_ok=True)
                files = write_key_pair(generate_key_pair(KeyKind.ecdsa_p256), path.with_suffix(""), _password)
                progress.warn(
                    f"no --key given: created the signing key {files.private}; give consumers "
                    f"{files.public} to verify this image's attestations"
                )
            self._ref = str(path)
            public = path.with_suffix(".pub")
            if public.is_file():
                self._hint = pem_key_hint(public.read_bytes()) or None

    @property
    def hint(self) -> str:
        if self._hint is None:
            self._hint = self.signer().key_id
        return self._hint

    def signer(self) -> Signer:
        if self._signer is None:
            from bastion.attest import load_signer

            assert self._ref is not None
            self._signer = load_signer(self._ref, _password)
        return self._signer


def _password() -> bytes:
    from bastion.attest import password_from_env

    return password_from_env() or b""


def attest_platform(  # noqa: PLR0912, PLR0915  (one branch per predicate type a build attaches)
    store: Store,
    manifest: Descriptor,
    *,
    name: str,
    signer: BuildSigner,
    record: BuildRecord,
    sbom: Callable[[], Sbom],
    settings: Settings,
    extra: dict[str, Callable[[], dict[str, Any]]] | None = None,
    vex: Sequence[VexStatement] = (),
) -> list[Descriptor]:
    """Attach what :data:`BUILD_PREDICATES` lists (plus ``extra``: predicate type → what makes the
    predicate, and
    the CVE scan and OpenVEX document, with the definition's ``vex`` statements, when a vulnerability
    database is present) to ``manifest``,
    signed by ``signer``; a predicate already attached with this key (a rebuild of the same image)
    is not attached again, except a CVE scan or OpenVEX document made from other vulnerability data
    than the database holds now (:data:`ANNOTATION_VULN_DATA`), and an OpenVEX document made from
    other ``vex`` statements than the definition's now (:data:`ANNOTATION_VEX_STATEMENTS`)."""
    from bastion.vuln import data_version, database_path

    # The CVE scan and the OpenVEX document depend on the vulnerability data, and the OpenVEX
    # document on the definition's own statements, none of which is part of the image: one made
    # from other data or statements does not count as attached.
    statements = statements_digest(vex)
    database = database_path(settings.home)
    data = data_version(database) or ""
    made_from = {
        CVE_SCAN_PREDICATE_TYPE: {ANNOTATION_VULN_DATA: data},
        OPENVEX_PREDICATE_TYPE: {ANNOTATION_VULN_DATA: data},
    }
    if statements:
        made_from[OPENVEX_PREDICATE_TYPE][ANNOTATION_VEX_STATEMENTS] = statements
    have = {
        b.predicate_type
        for b in stored_bundles(store, manifest.digest, max_size=settings.max_attestation_size)
        if bundle_key_hint(b.bundle) == signer.hint
        and all(
            b.manifest.annotations.get(key, "") == value
            for key, value in made_from.get(b.predicate_type, {}).items()
        )
    }
    wanted = [*BUILD_PREDICATES, *(extra or {})]
    if database.exists():
        wanted += [CVE_SCAN_PREDICATE_TYPE, OPENVEX_PREDICATE_TYPE]
    missing = [p for p in wanted if p not in have]
    if not missing:
        return []
    from bastion.attest import Subject, make_statement, sign_statement
    from bastion.sbom import to_cyclonedx, to_spdx

    created = rfc3339()
    document: Sbom | None = None
    computed: dict[str, dict[str, Any] | None] = {}
    bundles: dict[str, bytes] = {}
    with contextlib.ExitStack() as stack:
        cyclonedx: Forked[bytes] | None = None
        if CYCLONEDX_PREDICATE_TYPE in missing:
            # The CycloneDX document (cyclonedx-python-lib, its schema validation) is the longest
            # to make: a child makes it while this process makes and signs the others.
            document = document or sbom()
            whole = document
            cyclonedx = stack.enter_context(Forked(lambda: to_cyclonedx(whole)))
        if CVE_SCAN_PREDICATE_TYPE in missing or OPENVEX_PREDICATE_TYPE in missing:
            from bastion.vex import scan_attestations

            document = document or sbom()
            scanned = scan_attestations(f"{name}@{manifest.digest}", settings, sbom=document, statements=vex)
            if scanned is not None:
                computed[CVE_SCAN_PREDICATE_TYPE], computed[OPENVEX_PREDICATE_TYPE] = scanned
        for predicate_type in sorted(
            missing, key=lambda p: p == CYCLONEDX_PREDICATE_TYPE
        ):  # the child's result last
            predicate: dict[str, Any] | None
            if predicate_type in (extra or {}):
                predicate = (extra or {})[predicate_type]()
            elif predicate_type == PROVENANCE_PREDICATE_TYPE:
                predicate = provenance(record)
            elif predicate_type == SPDX_PREDICATE_TYPE:
                document = document or sbom()
                predicate = json.loads(to_spdx(document))
            elif predicate_type == CYCLONEDX_PREDICATE_TYPE and cyclonedx is not None:
                predicate = json.loads(cyclonedx.result())
            else:
                predicate = computed.get(predicate_type)
            if predicate is None:
                continue  # nothing to state (an OpenVEX document needs one statement at least)
            statement = make_statement([Subject.for_digest(name, manifest.digest)], predicate_type, predicate)
            bundles[predicate_type] = sign_statement(statement, signer.signer())
    attached = []
    for predicate_type in missing:
        if predicate_type not in bundles:
            continue
        annotations = {k: v for k, v in made_from.get(predicate_type, {}).items() if v} or None
        attached.append(
            attach_bundle(
                store,
                manifest,
                bundles[predicate_type],
                predicate_type=predicate_type,
                created=created,
                annotations=annotations,
            )
        )
    return attached


def statements_digest(vex: Sequence[VexStatement]) -> str:
    """``sha256:...`` of the statements as the definition means them ("" when there are none)."""
    if not vex:
        return ""
    data = json.dumps([s.model_dump(mode="json") for s in vex], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
