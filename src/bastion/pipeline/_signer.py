"""The key a build (or ``bastion attest refresh``) signs attestations with.

Without ``--key`` a build signs with the local key (:func:`bastion.attest.local_key`,
``BASTION_HOME/keys/bastion.key``, made on first use with a warning naming its public key, which is
what consumers must be given), as source builds do.

A rebuild of an unchanged image finds its attestations signed by the same key already attached and
signs nothing (:func:`bastion.pipeline.outstanding`): the key's hint comes from the public key file, so
the private key is not even decrypted (scrypt is slow on purpose).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bastion._progress import Progress
from bastion.attest import pem_key_hint
from bastion.config import Settings

if TYPE_CHECKING:
    from bastion.attest import Signer
    from bastion.catalog import VexStatement


class BuildSigner:
    """The key a build signs with, loaded (and decrypted) only when something must be signed."""

    def __init__(self, key: str | None, settings: Settings, progress: Progress) -> None:
        self._ref = key
        self._signer: Signer | None = None
        self._hint: str | None = None
        if key is None:
            from bastion.attest import local_key

            path = local_key(settings.home, progress.warn, verifies="this image's attestations")
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
            from bastion.attest import env_password, load_signer

            assert self._ref is not None
            self._signer = load_signer(self._ref, env_password)
        return self._signer


def statements_digest(vex: Sequence[VexStatement]) -> str:
    """``sha256:...`` of the statements as the definition means them ("" when there are none)."""
    if not vex:
        return ""
    data = json.dumps([s.model_dump(mode="json") for s in vex], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
