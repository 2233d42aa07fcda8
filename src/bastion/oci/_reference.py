"""Registry references: ``HOST[:PORT]/REPO[:TAG][@sha256:HEX]`` and ``registry://HOST/REPO:TAG``.

The grammar is the one of the distribution project's reference package (``reference.go``): a domain
(``host[:port]``), path components of lower-case alphanumerics joined by ``.``, ``_``, ``__`` or runs of
``-``, an optional tag of at most 128 word characters, dots and dashes, and an optional digest.

Bastion never assumes a default registry: a reference names its host, so a name such as
``bastion/python:3.11`` is always a local store name (:func:`is_registry_reference` decides which).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bastion.errors import InputError

REGISTRY_SCHEME = "registry://"

_HOST_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\])"
_DOMAIN_RE = re.compile(rf"(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_MAX_NAME = 255  # reference.go: NameTotalLengthMax


@dataclass(frozen=True)
class Reference:
    """A parsed registry reference. ``registry`` is ``host`` or ``host:port`` as written."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def hostname(self) -> str:
        return _DOMAIN_RE.fullmatch(self.registry).group("host")  # type: ignore[union-attr]

    @property
    def port(self) -> int | None:
        port = _DOMAIN_RE.fullmatch(self.registry).group("port")  # type: ignore[union-attr]
        return None if port is None else int(port)

    @property
    def ref(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag (``latest`` by default)."""
        return self.digest or self.tag or "latest"

    def with_ref(self, *, tag: str | None = None, digest: str | None = None) -> Reference:
        return Reference(self.registry, self.repository, tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses, the only hosts spoken to over plain HTTP by default."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_registry_reference(text: str) -> bool:
    """True when ``text`` names an image in a registry rather than in the local store.

    As Docker decides it (``reference/normalize.go`` ``splitDockerDomain``): the first ``/``-separated
    component is a registry host when it contains ``.`` or ``:`` or is ``localhost``. ``registry://``
    always means a registry; other ``scheme://`` forms (``oci-dir://``) never do.
    """
    if text.startswith(REGISTRY_SCHEME):
        return True
    if "://" in text or "/" not in text:
        return False
    first = text.split("/", 1)[0]
    return "." in first or ":" in first or first == "localhost"


def parse_reference(text: str) -> Reference:
    """Parse ``HOST[:PORT]/REPO[:TAG][@sha256:HEX]`` or ``registry://HOST/REPO[:TAG]``."""
    body = text.removeprefix(REGISTRY_SCHEME)
    if body == text and not is_registry_reference(text):
        raise InputError(
            f"not a registry reference: {text!r}",
            hint="name the registry host first, e.g. registry.example:5000/repo:tag or registry://HOST/REPO:TAG",
        )
    if "/" not in body:
        raise InputError(f"registry reference {text!r} has no repository", hint="use HOST/REPO[:TAG]")
    domain, rest = body.split("/", 1)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InputError(f"registry reference {text!r} has an invalid host {domain!r}")
    digest: str | None = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise InputError(f"registry reference {text!r} has an invalid digest {digest!r}")
    tag: str | None = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG_RE.fullmatch(tag):
            raise InputError(f"registry reference {text!r} has an invalid tag {tag!r}")
    if not _PATH_RE.fullmatch(rest) or len(domain) + 1 + len(rest) > _MAX_NAME:
        raise InputError(
            f"registry reference {text!r} has an invalid repository {rest!r}",
            hint="lower-case letters, digits and . _ - separators",
        )
    return Reference(domain, rest, tag, digest)


def check_repository(name: str) -> str:
    """Return ``name`` if it is a valid repository path (used in URLs, so checked before use)."""
    if not _PATH_RE.fullmatch(name):
        raise InputError(f"not a valid repository name: {name!r}")
    return name


def check_tag_or_digest(ref: str) -> str:
    """Return ``ref`` if it is a valid tag or sha256 digest (it becomes part of a URL path)."""
    if not (_TAG_RE.fullmatch(ref) or _DIGEST_RE.fullmatch(ref)):
        raise InputError(f"not a valid tag or digest: {ref!r}")
    return ref
