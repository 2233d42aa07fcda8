"""What reading an image from outside may cost, and the one walk over an index tree that keeps to it.

An image index names other indexes and manifests by digest, and nothing in the image spec bounds how
many or how deep (image-spec ``image-index.md``). A hostile registry or layout can list the same child
200 times at each of 4 levels (1.6 billion paths to 4 documents) or chain 1,200 indexes. So every walk
over an index tree (pull, copy, scanning, finding attestations) goes through :func:`walk_index`: each
digest is visited once, indexes may nest at most :data:`MAX_NESTING` levels below the top, and one
image may hold at most ``BASTION_MAX_DOCUMENTS`` distinct manifests and indexes. The registry client's
time limits (``BASTION_REGISTRY_TIMEOUT``, ``BASTION_REGISTRY_DEADLINE``) are read here too, so that
every limit a user can change is parsed, and refused when malformed, in one place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from bastion.errors import InputError, IntegrityError
from bastion.oci._model import INDEX_MEDIA_TYPES, Descriptor, parse_index

__all__ = [
    "ENV_MAX_DOCUMENTS",
    "ENV_REGISTRY_DEADLINE",
    "ENV_REGISTRY_TIMEOUT",
    "MAX_NESTING",
    "DocumentBudget",
    "RegistryLimits",
    "Visit",
    "walk_index",
]

#: Indexes below the top index: an image index of platform images, each an index of an image and its
#: attestations, is 2; the rest is headroom.
MAX_NESTING = 4
ENV_MAX_DOCUMENTS = "BASTION_MAX_DOCUMENTS"
ENV_REGISTRY_TIMEOUT = "BASTION_REGISTRY_TIMEOUT"
ENV_REGISTRY_DEADLINE = "BASTION_REGISTRY_DEADLINE"
#: A multi-platform image with attestations holds a few dozen documents.
DEFAULT_MAX_DOCUMENTS = 1000
DEFAULT_REGISTRY_TIMEOUT = 300.0
DEFAULT_REGISTRY_DEADLINE = 3600.0


def _env_number(name: str, default: float, environ: Mapping[str, str] | None) -> float:
    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name}={text!r} is not a positive number")
    return value


def max_documents(environ: Mapping[str, str] | None = None) -> int:
    """``BASTION_MAX_DOCUMENTS``: the most distinct manifests and indexes one image may hold."""
    return max(int(_env_number(ENV_MAX_DOCUMENTS, DEFAULT_MAX_DOCUMENTS, environ)), 1)


@dataclass(frozen=True)
class RegistryLimits:
    """How long registry requests may take: ``request`` seconds for one request in all (answer and
    body, retries included; a blob also gets one second per MiB its descriptor states), and
    ``operation`` seconds for all the requests of one client (one command)."""

    request: float = DEFAULT_REGISTRY_TIMEOUT
    operation: float = DEFAULT_REGISTRY_DEADLINE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistryLimits:
        return cls(
            _env_number(ENV_REGISTRY_TIMEOUT, DEFAULT_REGISTRY_TIMEOUT, environ),
            _env_number(ENV_REGISTRY_DEADLINE, DEFAULT_REGISTRY_DEADLINE, environ),
        )


@dataclass
class DocumentBudget:
    """The distinct documents read for one image; share one between walks that belong together."""

    where: str
    limit: int = field(default_factory=max_documents)
    seen: set[str] = field(default_factory=set)

    def first_visit(self, digest: str) -> bool:
        """Whether ``digest`` is new (counting it); refuses the image once it holds too many."""
        if digest in self.seen:
            return False
        if len(self.seen) >= self.limit:
            raise InputError(
                f"the image holds more than {self.limit} manifests and indexes",
                where=self.where,
                hint=f"{ENV_MAX_DOCUMENTS} raises the limit",
            )
        self.seen.add(digest)
        return True


class Visit(NamedTuple):
    descriptor: Descriptor
    parent: Descriptor | None  # the index that listed it; None for the top
    data: bytes | None  # an index's bytes as read; None for anything else


def walk_index(
    top: Descriptor,
    read_index: Callable[[Descriptor], bytes],
    *,
    where: str,
    budget: DocumentBudget | None = None,
    skip: Callable[[Descriptor], bool] | None = None,
) -> Iterator[Visit]:
    """``top`` and everything its indexes list, depth first in order, each digest once.

    ``read_index`` returns an index's bytes checked against its digest; only indexes are read. Entries
    for which ``skip`` is true are not visited. Refuses nesting deeper than :data:`MAX_NESTING` and
    more documents than the budget allows.
    """
    budget = budget if budget is not None else DocumentBudget(where)
    stack: list[tuple[Descriptor, Descriptor | None, int]] = [(top, None, 0)]
    while stack:
        desc, parent, depth = stack.pop()
        if not budget.first_visit(desc.digest):
            continue
        if desc.media_type not in INDEX_MEDIA_TYPES:
            yield Visit(desc, parent, None)
            continue
        if depth > MAX_NESTING:
            raise IntegrityError(f"index {desc.digest} nests more than {MAX_NESTING} levels", where=where)
        data = read_index(desc)
        children = parse_index(data, where=desc.digest).manifests
        yield Visit(desc, parent, data)
        stack.extend((c, desc, depth + 1) for c in reversed(children) if skip is None or not skip(c))
