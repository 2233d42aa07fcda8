"""The OpenVEX documents of Bastion's own APT repository: what its source builds' patches fix.

``bastion source build`` writes, for a build whose patches declare ``fixes``, an OpenVEX document under
``BASTION_HOME/repository/vex/`` stating each vulnerability ``fixed`` in each built package at its exact
version (``pkg:deb`` purls whose version carries ``+bastion<N>``). ``bastion cves`` applies these
documents before the ones given with ``--vex`` (which therefore win at equal times), and ``bastion vex``
and the build's OpenVEX attestation state them for an image that contains such a package.

Only ``fixed`` statements whose every product is such a purl are taken from the directory: it speaks
for Bastion's own packages and for nothing else, so a document dropped there cannot silence findings of
Debian's packages or of the image as a whole.
"""

from __future__ import annotations

import os
from pathlib import Path

from packageurl import PackageURL

from bastion.config import Settings
from bastion.vex._generate import AuthoredStatement
from bastion.vex._model import Statement, VexDocument, VexStatus, load_vex

__all__ = ["REPOSITORY_VEX_DIR", "repository_statements", "repository_vex"]

REPOSITORY_VEX_DIR = "vex"
#: The most documents read from the directory (bounded work).
MAX_DOCUMENTS = 4096


def _bastion_package(text: str | None) -> bool:
    if not text:
        return False
    try:
        purl = PackageURL.from_string(text)
    except ValueError:
        return False
    return purl.type == "deb" and "+bastion" in (purl.version or "")


def _ours(statement: Statement) -> bool:
    return (
        statement.status is VexStatus.FIXED
        and bool(statement.products)
        and all(
            not p.subcomponents and _bastion_package(p.purl or p.id) and (p.purl is None or p.purl == p.id)
            for p in statement.products
        )
    )


def repository_vex(settings: Settings) -> list[tuple[Path, VexDocument]]:
    """The repository's documents (each with its path), keeping only the statements it may make."""
    directory = settings.repository_dir / REPOSITORY_VEX_DIR
    try:
        names = sorted(e.name for e in os.scandir(directory) if e.name.endswith(".openvex.json"))
    except FileNotFoundError:
        return []
    except OSError as error:
        from bastion.errors import InputError

        raise InputError(
            f"cannot read Bastion's repository VEX: {error.strerror}", where=str(directory)
        ) from None
    documents = []
    for index, name in enumerate(names[:MAX_DOCUMENTS]):
        document = load_vex(directory / name, index=index)
        kept = tuple(s for s in document.statements if _ours(s))
        if kept:
            documents.append(
                (directory / name, VexDocument(document.id, document.author, document.timestamp, kept))
            )
    return documents


def repository_statements(settings: Settings) -> list[AuthoredStatement]:
    """The repository's statements as :func:`bastion.vex.generate_vex` takes a person's: each states its
    vulnerability fixed in the packages it names (so only for an image that contains them)."""
    return [
        AuthoredStatement(
            vulnerability=statement.vulnerability,
            status=VexStatus.FIXED,
            author=f"{document.author} ({path.name})",
            packages=tuple(str(p.purl or p.id) for p in statement.products),
        )
        for path, document in repository_vex(settings)
        for statement in document.statements
    ]
