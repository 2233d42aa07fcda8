"""One way to name an image: :func:`parse_image_ref` reads what a user wrote into an :class:`ImageRef`,
and every command resolves it through the functions here, so the same text means the same image in
``inspect``, ``sbom``, ``cves``, ``attest``, ``verify``, ``compliance``, ``export`` and ``push``.

The forms, one table (:data:`SCHEMES`):

* ``NAME[:TAG]``, ``NAME@sha256:HEX``, ``sha256:HEX`` — an image in the local store
  (:func:`store_image`, :func:`~bastion.oci.find_in_store`);
* ``oci-dir://PATH[:TAG][@sha256:HEX]`` — an OCI image layout directory;
* ``docker-archive://FILE[:TAG]`` — a ``docker save`` tar;
* ``fs://DIR`` — a root filesystem directory;
* ``sbom://FILE`` — an SPDX 2.3 or CycloneDX 1.6 JSON document (not an image);
* ``registry://HOST/REPO[:TAG][@sha256:HEX]``, or the same without ``registry://`` when its first
  component is a registry host (:func:`~bastion.oci.is_registry_reference`); written without the
  scheme, a name the local store holds is read there.

Where a path ends and a tag begins (paths may contain ``:``, and a tag may be a whole reference name
such as ``test/image:1``, as ``org.opencontainers.image.ref.name`` allows): a trailing ``@sha256:HEX``
pins a digest (``oci-dir://`` only); then the path is the longest part of the text, the whole or up to
a ``:``, that is what the scheme reads (a directory holding ``oci-layout``, a regular file); what
follows that ``:`` is the tag. When no such part exists yet (an export destination), the path ends at
the first ``:`` after its deepest existing directory. So ``oci-dir:///srv/a:b/layout:tag`` is the
layout ``/srv/a:b/layout`` and the tag ``tag`` whether or not the layout exists yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bastion.errors import InputError
from bastion.oci._export import layout_images
from bastion.oci._model import Descriptor
from bastion.oci._reference import REGISTRY_SCHEME, Reference, is_registry_reference, parse_reference
from bastion.oci._store import Store, find_in_store, open_in_store

__all__ = [
    "SCHEMES",
    "ImageRef",
    "Scheme",
    "SchemeInfo",
    "entry_names",
    "layout_entry",
    "layout_image",
    "parse_image_ref",
    "store_image",
]

# Linux PATH_MAX: no path, hence no reference to one, is longer.
MAX_REFERENCE = 4096
_CONTAINERD_NAME = "io.containerd.image.name"
_DIGEST_SUFFIX = re.compile(r"@(sha256:[a-f0-9]{64})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Scheme(StrEnum):
    store = "store"
    oci_dir = "oci-dir"
    docker_archive = "docker-archive"
    fs = "fs"
    sbom = "sbom"
    registry = "registry"


@dataclass(frozen=True)
class SchemeInfo:
    """What one kind of reference names and can hold."""

    form: str  # how it is written, for messages and help
    image: bool  # names an image (sbom:// names a document about one)
    attestations: bool  # can carry signatures and attestations


SCHEMES: dict[Scheme, SchemeInfo] = {
    Scheme.store: SchemeInfo("a local store name", image=True, attestations=True),
    Scheme.oci_dir: SchemeInfo("oci-dir://PATH[:TAG]", image=True, attestations=True),
    Scheme.docker_archive: SchemeInfo("docker-archive://FILE[:TAG]", image=True, attestations=False),
    Scheme.fs: SchemeInfo("fs://DIR", image=True, attestations=False),
    Scheme.sbom: SchemeInfo("sbom://FILE", image=False, attestations=False),
    Scheme.registry: SchemeInfo("a registry reference (HOST/REPO:TAG)", image=True, attestations=True),
}
# The schemes written as SCHEME:// (a store name has none).
_WRITTEN = {s.value: s for s in Scheme if s is not Scheme.store}
# How a path-naming scheme tells the thing it reads from a path that is not it (the path/tag rule).
_READS: dict[Scheme, Callable[[Path], bool]] = {
    Scheme.oci_dir: lambda path: (path / "oci-layout").is_file(),
    Scheme.docker_archive: Path.is_file,
}


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. ``text`` is what the user wrote (used in messages and as the name)."""

    text: str
    scheme: Scheme
    path: Path | None = None  # oci-dir, docker-archive, fs, sbom
    tag: str | None = None  # oci-dir, docker-archive: a tag or a whole reference name
    digest: str | None = None  # oci-dir: @sha256:HEX
    explicit: bool = True  # False for a registry reference written without registry://

    def __str__(self) -> str:
        return self.text

    @property
    def store_first(self) -> bool:
        """A registry reference written without ``registry://``: the local store is asked first."""
        return self.scheme is Scheme.registry and not self.explicit

    @property
    def remote(self) -> Reference:
        """The registry reference (refused with the grammar's message when it is not a valid one)."""
        return parse_reference(self.text)

    def require(self, accepted: Collection[Scheme], by: str) -> ImageRef:
        """``self`` when ``by`` (a command, or what a library function does) takes this kind of
        reference; otherwise the one refusal every command gives."""
        if self.scheme in accepted or (self.store_first and Scheme.store in accepted):
            return self
        info = SCHEMES[self.scheme]
        if not info.image:
            why = f": {info.form} names an SBOM document, not an image"
        elif not info.attestations and all(SCHEMES[s].attestations for s in accepted):
            why = f": {info.form.partition('://')[0]}:// images carry no attestations"
        else:
            why = ""
        forms = [SCHEMES[s].form for s in Scheme if s in accepted]
        raise InputError(
            f"{by} does not take {info.form}{why}", where=self.text, hint="use " + " or ".join(forms)
        )


def parse_image_ref(text: str | ImageRef) -> ImageRef:
    """Parse a reference in any of the forms of the module docstring (an :class:`ImageRef` is
    returned as it is). Bad input is an :class:`InputError` naming it."""
    if isinstance(text, ImageRef):
        return text
    shown = text if len(text) <= 80 else text[:77] + "..."
    if not text:
        raise InputError("empty image reference", hint="name an image, e.g. bastion/python:3.11")
    if len(text) > MAX_REFERENCE:
        raise InputError(f"image reference {shown!r} is longer than {MAX_REFERENCE} characters")
    if _CONTROL.search(text):
        raise InputError(f"image reference {text!r} contains a control character")
    name, sep, rest = text.partition("://")
    if not sep:
        if is_registry_reference(text):
            return ImageRef(text, Scheme.registry, explicit=False)
        return ImageRef(text, Scheme.store)
    scheme = _WRITTEN.get(name)
    if scheme is None:
        raise InputError(
            f"unknown image reference scheme {name + '://'!r}",
            where=shown,
            hint="use " + ", ".join(SCHEMES[s].form for s in Scheme),
        )
    if not rest:
        raise InputError(
            f"{name}:// names no {'repository' if scheme is Scheme.registry else 'path'}", where=text
        )
    if scheme is Scheme.registry:
        parse_reference(REGISTRY_SCHEME + rest)  # refused here, with the grammar's message
        return ImageRef(text, scheme)
    if scheme not in _READS:
        return ImageRef(text, scheme, Path(rest))
    digest = None
    pinned = _DIGEST_SUFFIX.search(rest)
    if scheme is Scheme.oci_dir and pinned is not None and pinned.end() == len(rest):
        rest, digest = rest[: pinned.start()], pinned.group(1)
    path, tag = _split_path(rest, _READS[scheme])
    if not path:
        raise InputError(f"{name}:// names no path", where=text)
    return ImageRef(text, scheme, Path(path), tag, digest)


def _split_path(text: str, reads: Callable[[Path], bool]) -> tuple[str, str | None]:
    """``PATH[:TAG]`` by the rule of the module docstring."""
    for cut in [len(text), *(m.start() for m in reversed(list(re.finditer(":", text))))]:
        if cut and _holds(reads, text[:cut]):
            return text[:cut], text[cut + 1 :] or None
    # Nothing there yet: cut at the first ':' below the deepest directory that exists.
    base = 0
    for slash in (m.start() for m in re.finditer("/", text)):
        if not _holds(Path.is_dir, text[:slash] or "/"):
            break
        base = slash + 1
    colon = text.find(":", base)
    return (text, None) if colon < 0 else (text[:colon], text[colon + 1 :] or None)


def _holds(check: Callable[[Path], bool], path: str) -> bool:
    try:
        return check(Path(path))
    except OSError:  # a name too long, a directory that cannot be searched: not there for us
        return False


def store_image(ref: ImageRef, store_dir: Path) -> tuple[Store, Descriptor] | None:
    """The local store's image ``ref`` names: a store name (refused, listing the store's tags, when
    the store lacks it), or a registry reference written without ``registry://`` that the store holds
    (a name the local store has is read there, as every command does). None for anything else."""
    if ref.scheme is Scheme.store:
        return open_in_store(store_dir, ref.text)
    if ref.store_first:
        return find_in_store(store_dir, ref.text)
    return None


def layout_image(ref: ImageRef, store_dir: Path) -> tuple[Store, Descriptor]:
    """The OCI layout and ``index.json`` entry of an image in the local store (:func:`store_image`,
    refusing a registry reference the store does not hold) or in an ``oci-dir://`` layout
    (:func:`layout_entry`)."""
    found = store_image(ref, store_dir)
    if found is not None:
        return found
    if ref.scheme is Scheme.oci_dir and ref.path is not None:
        store = Store(ref.path, create=False)
        return store, layout_entry(store.index().manifests, ref, ref.text)
    if ref.store_first:
        return open_in_store(store_dir, ref.text)
    raise InputError(f"{SCHEMES[ref.scheme].form} is not an OCI image layout", where=ref.text)


def entry_names(desc: Descriptor) -> list[str]:
    """The names an ``index.json`` entry is known by: containerd's and the OCI ref name."""
    return [n for n in (desc.annotations.get(_CONTAINERD_NAME), desc.ref_name) if n]


def layout_entry(entries: Sequence[Descriptor], ref: ImageRef, where: str) -> Descriptor:
    """The entry of a layout's ``index.json`` that ``ref`` names: by its digest when pinned; by tag,
    matched against the whole name first, then the part after its last ``:``; without a tag, the
    layout's one image (what is attached to it and the per-platform tags of an exported index are not
    other images: :func:`~bastion.oci.layout_images`)."""
    if ref.digest is not None:
        entries = [e for e in entries if e.digest == ref.digest]
        if not entries:
            raise InputError(f"the layout lists no image {ref.digest}", where=where)
    if ref.tag is None:
        images = layout_images(entries)
        if len({e.digest for e in images}) == 1:
            return images[0]
        names = sorted((entry_names(e) or [e.digest])[0] for e in images)
        raise InputError(
            f"the layout holds {len(images)} images",
            where=where,
            hint="add :TAG, one of: " + ", ".join(names),
        )
    tag = ref.tag
    exact = [e for e in entries if tag in entry_names(e)]
    by_tag = [
        e for e in entries if any(n.rsplit("/", 1)[-1].rpartition(":")[2] == tag for n in entry_names(e))
    ]
    for found in (exact, by_tag):
        if len({e.digest for e in found}) == 1:
            return found[0]
    names = sorted(n for e in entries for n in entry_names(e))
    raise InputError(f"no image tagged {tag!r}", where=where, hint="tags: " + (", ".join(names) or "none"))
