"""Applying VEX statements to a scan.

A statement applies to a finding when its vulnerability (``name`` or an alias) is one of the finding's
ids, and one of its products names

* **the image**, by digest (``sha256:...`` as ``@id``, or a ``sha-256`` hash), by ``pkg:oci`` purl
  (name and digest; ``repository_url``, ``tag`` and ``arch`` qualifiers compared only when the
  statement sets them, so a purl without ``repository_url`` matches the image in any repository), or
  by reference (``repo:tag``, ``repo@sha256:...``) — and then, if the product lists subcomponents, one
  of them names the finding's package by purl; or
* **the package itself** by purl (a statement about a component, as the Node.js document writes them).

The image's digests are its platform manifest's and, when it was chosen from one, its index's: the
index digest is what ``bastion build`` prints and what users pin, and the purl spec's ``oci`` type
names "the digest of the artifact", which for a multi-platform image is the index. A digest of any
other image never matches.

Purls match when type, namespace and name are equal, the statement's version (if any) equals the
package's, and every qualifier the statement sets has the package's value.

Precedence: of all statements that apply, the latest (statement ``last_updated``/``timestamp``, else
the document's) wins; at equal times the later document on the command line, then the later statement
in it. ``not_affected`` and ``fixed`` move the finding to the suppressed list (kept, shown with
``--show-suppressed``); ``affected`` and ``under_investigation`` keep it, with the statement's action.

:func:`apply_vex_counted` also says, per document, how many of its statements applied to a finding,
so that a statement that names nothing in the scanned image is reported rather than silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from packageurl import PackageURL

from bastion.vex._model import Product, Statement, VexDocument, VexStatus
from bastion.vuln import Finding, ScanResult, Suppression

__all__ = ["DocumentUse", "ImageSubject", "apply_vex", "apply_vex_counted", "purl_matches"]

_PYPI_LIKE = {"pypi"}


@dataclass(frozen=True)
class ImageSubject:
    digest: str | None  # sha256:... of the platform image manifest
    name: str  # the repository name, last path component (the pkg:oci name)
    repository: str | None  # repository_url as written in the image's purl
    references: frozenset[str]  # repo:tag and repo@digest forms the image answers to
    tags: frozenset[str]
    arch: str | None
    index_digest: str | None = None  # sha256:... of the index the manifest was chosen from

    @property
    def digests(self) -> frozenset[str]:
        """Every digest the image answers to: its manifest's and its index's."""
        return frozenset(d for d in (self.digest, self.index_digest) if d)

    @classmethod
    def of(cls, result: ScanResult) -> ImageSubject:
        repository = None
        arch = None
        name = result.name
        if result.root_purl:
            purl = PackageURL.from_string(result.root_purl)
            qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
            repository, arch, name = qualifiers.get("repository_url"), qualifiers.get("arch"), purl.name
        reference = result.name.split("://", 1)[-1]
        repo, tag = reference, None
        if "@" in reference:
            repo = reference.split("@", 1)[0]
        elif ":" in reference.rsplit("/", 1)[-1]:
            repo, tag = reference.rsplit(":", 1)
        references = {reference}
        # Its references: as the user typed it, and by the repository its purl records (the store's
        # full name, bastion/python, when the user typed python:3.11), with its tag or either digest.
        for named in {n for n in (repo, repository) if n}:
            if tag:
                references.add(f"{named}:{tag}")
            for digest in (result.manifest_digest, result.index_digest):
                if digest:
                    references.add(f"{named}@{digest}")
        return cls(
            digest=result.manifest_digest,
            name=name.rsplit("/", 1)[-1].split(":", 1)[0],
            repository=repository or repo,
            references=frozenset(references),
            tags=frozenset({tag} if tag else set()),
            arch=arch,
            index_digest=result.index_digest,
        )


def _parse(text: str | None) -> PackageURL | None:
    if not text or not text.startswith("pkg:"):
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _qualifiers(purl: PackageURL) -> dict[str, str]:
    return dict(purl.qualifiers) if isinstance(purl.qualifiers, dict) else {}


def purl_matches(pattern_text: str | None, purl_text: str) -> bool:
    pattern, purl = _parse(pattern_text), _parse(purl_text)
    if pattern is None or purl is None or pattern.type != purl.type:
        return False
    fold = pattern.type in _PYPI_LIKE  # PyPI names compare case-insensitively (PEP 503)

    def same(a: str | None, b: str | None) -> bool:
        return (a or "").lower() == (b or "").lower() if fold else a == b

    if not same(pattern.namespace, purl.namespace) or not same(pattern.name, purl.name):
        return False
    if pattern.version and pattern.version != purl.version:
        return False
    have = _qualifiers(purl)
    return all(have.get(key) == value for key, value in _qualifiers(pattern).items())


def _repository(text: str) -> str:
    return text.split("://", 1)[-1].rstrip("/").lower()


def _names_image(product: Product, image: ImageSubject) -> bool:
    digests = image.digests
    for value in (product.id, product.purl):
        if not value:
            continue
        if value.startswith("sha256:"):
            if value in digests:
                return True
            continue
        purl = _parse(value)
        if purl is not None:
            if purl.type != "oci" or purl.name != image.name:
                continue
            if purl.version and purl.version not in digests:
                continue
            q = _qualifiers(purl)
            if "repository_url" in q and (
                image.repository is None or _repository(q["repository_url"]) != _repository(image.repository)
            ):
                continue
            if "tag" in q and q["tag"] not in image.tags:
                continue
            if "arch" in q and q["arch"] != image.arch:
                continue
            if purl.version or q.get("tag"):
                return True
            continue  # a pkg:oci purl with neither digest nor tag names no particular image
        if value in image.references:
            return True
    stated = dict(product.hashes).get("sha-256")
    return stated is not None and f"sha256:{stated}" in digests


def _applies(statement: Statement, finding: Finding, image: ImageSubject) -> bool:
    if not statement.names & set(finding.ids):
        return False
    for product in statement.products:
        if _names_image(product, image):
            if not product.subcomponents:
                return True
            if any(purl_matches(s.purl or s.id, finding.package.purl) for s in product.subcomponents):
                return True
        elif purl_matches(product.purl or product.id, finding.package.purl):
            return True
    return False


@dataclass(frozen=True)
class DocumentUse:
    """How much of one VEX document applied to a scan."""

    document: str  # the document's @id (OpenVEX) or serial number (CycloneDX)
    statements: int
    applied: int  # statements that applied to at least one finding

    @property
    def unused(self) -> int:
        return self.statements - self.applied


def apply_vex(result: ScanResult, documents: Sequence[VexDocument]) -> ScanResult:
    """A copy of ``result`` with every applicable statement's decision applied."""
    return apply_vex_counted(result, documents)[0]


def apply_vex_counted(
    result: ScanResult, documents: Sequence[VexDocument]
) -> tuple[ScanResult, list[DocumentUse]]:
    """:func:`apply_vex`, and for each document (in order) how many of its statements applied."""
    image = ImageSubject.of(result)
    # Keyed by position: Statement.order comes from the caller and need not be unique.
    statements = {
        (d, n): s for d, document in enumerate(documents) for n, s in enumerate(document.statements)
    }
    active: list[Finding] = []
    suppressed = list(result.suppressed)
    used: set[tuple[int, int]] = set()
    for finding in result.findings:
        keys = [key for key, s in statements.items() if _applies(s, finding, image)]
        used.update(keys)
        matching = [statements[key] for key in keys]
        if not matching:
            active.append(finding)
            continue
        winner = max(matching, key=lambda s: (s.timestamp, s.order))
        if winner.status in (VexStatus.NOT_AFFECTED, VexStatus.FIXED):
            reason = Suppression(
                status=str(winner.status),
                justification=winner.justification,
                statement=winner.impact_statement or winner.status_notes or "",
                author=winner.author,
                document=winner.document,
                timestamp=winner.timestamp.isoformat().replace("+00:00", "Z"),
            )
            suppressed.append(dataclasses.replace(finding, suppression=reason))
        else:
            note = winner.action_statement or winner.status_notes or finding.note
            active.append(dataclasses.replace(finding, vex_status=str(winner.status), note=note))
    uses = [
        DocumentUse(document.id, len(document.statements), sum(1 for d, _ in used if d == position))
        for position, document in enumerate(documents)
    ]
    return dataclasses.replace(result, findings=active, suppressed=suppressed), uses
