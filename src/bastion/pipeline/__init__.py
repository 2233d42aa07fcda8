"""The pipeline: a definition to a signed, published image, one explicit sequence of stages
(``_stages.py``): resolve → fetch → assemble → test → write image → prove → sign → attach → publish.

``build`` runs them all in order; ``attest_image`` runs prove, sign and attach again on their own for
an image already in the store; the supply commands run ``resolve`` and ``fetch``.
"""

from typing import TYPE_CHECKING

from bastion._lazy import lazy_attributes

# Loaded on first use (PEP 562, bastion._lazy): the supply commands need only the resolve and fetch
# stages, not the builder's imports.
if TYPE_CHECKING:
    from bastion.pipeline._base import base_ready
    from bastion.pipeline._build import BuiltPlatform, BuiltVariant, build
    from bastion.pipeline._platform import ImageTestFailed
    from bastion.pipeline._refresh import Refreshed, refresh
    from bastion.pipeline._signer import BuildSigner
    from bastion.pipeline._stages import (
        Attached,
        Fetched,
        Pending,
        Proof,
        SignedProof,
        attach,
        attest_image,
        chosen_platforms,
        default_producers,
        fetch,
        outstanding,
        prove,
        publish,
        resolve,
        select_locked,
        sign,
        supply,
    )

__getattr__ = lazy_attributes(__name__)

__all__ = [
    "Attached",
    "BuildSigner",
    "BuiltPlatform",
    "BuiltVariant",
    "Fetched",
    "ImageTestFailed",
    "Pending",
    "Proof",
    "Refreshed",
    "SignedProof",
    "attach",
    "attest_image",
    "base_ready",
    "build",
    "chosen_platforms",
    "default_producers",
    "fetch",
    "outstanding",
    "prove",
    "publish",
    "refresh",
    "resolve",
    "select_locked",
    "sign",
    "supply",
]
