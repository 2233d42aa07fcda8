"""Proof producers: what makes each predicate a pipeline signs, behind one interface.

A producer (:class:`ProofProducer`) names a predicate type from the one registry
(:mod:`bastion.attest._predicates`) and makes its predicate from a :class:`ProofContext`: the image
(a platform manifest in the store) and the *facts* its caller knows about it (the SBOM assembly
made, the build record, the compliance claims, the definition's VEX statements). A fact is a typed
key (:class:`Fact`); the package that owns the value defines the key, and may give it a default
that derives the value from the stored image (the SBOM: a scan of the image), so a producer run
again later, on an image already in the store, needs nothing but the image.

Producers live next to what they prove (``bastion.sbom``, ``bastion.vex``, ``bastion.compliance``,
this package for provenance) and are exported from their package; the pipeline keeps a
:class:`ProducerRegistry` of them, signs whatever they return and knows nothing of their insides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from bastion.attest._predicates import PREDICATE_ALIASES, PREDICATE_TYPES, PROVENANCE_PREDICATE_TYPE
from bastion.attest._provenance import BuildRecord, provenance
from bastion.errors import InputError, InternalError

if TYPE_CHECKING:
    from bastion.config import Settings
    from bastion.oci import Descriptor, Store

__all__ = [
    "BUILD_RECORD",
    "PROVENANCE_PRODUCER",
    "Fact",
    "ProducerRegistry",
    "ProofContext",
    "ProofProducer",
]

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Fact(Generic[T]):
    """A typed key for something proofs are made from. ``default`` derives the value from the
    context (the stored image) when the caller did not supply it; without one the fact is absent."""

    name: str
    default: Callable[[ProofContext], T] | None = None


class ProofContext:
    """One platform image in the store and the facts its proofs are made from. Each fact is made at
    most once (producers share it: the SPDX and CycloneDX documents and the CVE scan, one SBOM)."""

    def __init__(
        self,
        store: Store,
        subject: Descriptor,
        *,
        name: str,
        platform: str,
        settings: Settings,
        facts: Mapping[Fact[Any], Callable[[], Any]] | None = None,
    ) -> None:
        self.store = store
        self.subject = subject  # the platform manifest the statements are about
        self.name = name  # the image's repository, as the statements' subject names it
        self.platform = platform
        self.settings = settings
        self._suppliers = dict(facts or {})
        self._made: dict[Fact[Any], Any] = {}

    @property
    def reference(self) -> str:
        """The image by digest, as commands that read the store take it."""
        return f"{self.name}@{self.subject.digest}"

    def has(self, fact: Fact[Any]) -> bool:
        """Whether ``fact`` can be had (supplied, or derivable), without making it."""
        return fact in self._suppliers or fact.default is not None

    def get(self, fact: Fact[T]) -> T:
        """The value of ``fact``, made on first use; an absent fact is a caller's mistake."""
        if fact not in self._made:
            supplier = self._suppliers.get(fact)
            if supplier is not None:
                self._made[fact] = supplier()
            elif fact.default is not None:
                self._made[fact] = fact.default(self)
            else:
                raise InternalError(f"no {fact.name} was given for {self.reference}")
        value: T = self._made[fact]
        return value


class ProofProducer(Protocol):
    """What makes one predicate. ``inputs`` says whether there is anything to make for ``context``
    (``None``: not now, e.g. no vulnerability database, or no build record for a stored image) and,
    as annotations, what outside the image the predicate is made from (a predicate already attached
    with other inputs does not count as attached). ``produce`` returns the predicate, or ``None``
    when there is nothing to state. ``needs`` are the facts made in this process before ``produce``
    runs, so that with ``separate_process`` (made in a forked child while the others are signed)
    the child does not make them a second time."""

    @property
    def name(self) -> str: ...
    @property
    def predicate_type(self) -> str: ...
    @property
    def needs(self) -> tuple[Fact[Any], ...]: ...
    @property
    def separate_process(self) -> bool: ...
    def inputs(self, context: ProofContext) -> Mapping[str, str] | None: ...
    def produce(self, context: ProofContext) -> dict[str, Any] | None: ...


class ProducerRegistry:
    """An ordered registry of producers, one per predicate type (attached in this order)."""

    def __init__(self, producers: Iterable[ProofProducer]) -> None:
        self._producers: tuple[ProofProducer, ...] = tuple(producers)
        known = {entry.uri for entry in PREDICATE_TYPES}
        seen: set[str] = set()
        for producer in self._producers:
            if producer.predicate_type not in known:
                raise InternalError(f"producer {producer.name}: {producer.predicate_type} is not registered")
            if producer.predicate_type in seen:
                raise InternalError(f"two producers of {producer.predicate_type}")
            seen.add(producer.predicate_type)

    def __iter__(self) -> Iterator[ProofProducer]:
        return iter(self._producers)

    def __len__(self) -> int:
        return len(self._producers)

    def only(self, names: Iterable[str]) -> ProducerRegistry:
        """The producers of the predicate types ``names`` lists (each a short name, an alias or a
        URI, as ``attest get --type`` takes them); an unknown or unproduced name is refused."""
        wanted = []
        for text in names:
            uri = PREDICATE_ALIASES.get(text, text)
            if not any(p.predicate_type == uri for p in self._producers):
                raise InputError(
                    f"no producer makes {text!r}",
                    hint="choose from: " + ", ".join(p.name for p in self._producers),
                )
            wanted.append(uri)
        return ProducerRegistry(p for p in self._producers if p.predicate_type in wanted)


#: The build's record of what it read and did (:class:`BuildRecord`); only a build knows it.
BUILD_RECORD: Fact[BuildRecord] = Fact("build record")


@dataclass(frozen=True)
class _Provenance:
    """SLSA v1 provenance (https://slsa.dev/spec/v1.0/provenance), from the build record."""

    name: str = "provenance"
    predicate_type: str = PROVENANCE_PREDICATE_TYPE
    needs: tuple[Fact[Any], ...] = ()
    separate_process: bool = False

    def inputs(self, context: ProofContext) -> Mapping[str, str] | None:
        return {} if context.has(BUILD_RECORD) else None

    def produce(self, context: ProofContext) -> dict[str, Any] | None:
        return provenance(context.get(BUILD_RECORD))


PROVENANCE_PRODUCER: ProofProducer = _Provenance()
