"""One parser for every way of naming an image (:func:`bastion.oci.parse_image_ref`): each scheme of the
table, paths that contain colons, tags that are whole reference names, pinned digests, and the input it
refuses, each with a one-line :class:`InputError`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import InputError
from bastion.oci import ImageRef, Scheme, Store, parse_image_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """``a:b/layout`` and ``c:d`` are OCI layouts, ``a:b`` is a plain directory, ``arch.tar`` a file."""
    Store(tmp_path / "a:b" / "layout")
    Store(tmp_path / "c:d")
    (tmp_path / "arch.tar").write_bytes(b"")
    return tmp_path


# (reference, scheme, path under tmp, tag, digest, explicit)
PARSED = [
    ("bastion/python:3.11", Scheme.store, None, None, None, True),
    ("python", Scheme.store, None, None, None, True),
    (DIGEST, Scheme.store, None, None, None, True),
    ("bastion/python@" + DIGEST, Scheme.store, None, None, None, True),
    ("localhost:5000/app:1", Scheme.registry, None, None, None, False),
    ("registry.example:5000/app@" + DIGEST, Scheme.registry, None, None, None, False),
    ("registry://localhost:5000/app:1", Scheme.registry, None, None, None, True),
    ("oci-dir://{tmp}/a:b/layout", Scheme.oci_dir, "a:b/layout", None, None, True),
    ("oci-dir://{tmp}/a:b/layout:v1", Scheme.oci_dir, "a:b/layout", "v1", None, True),
    ("oci-dir://{tmp}/a:b/layout:test/image:1", Scheme.oci_dir, "a:b/layout", "test/image:1", None, True),
    ("oci-dir://{tmp}/a:b/layout@" + DIGEST, Scheme.oci_dir, "a:b/layout", None, DIGEST, True),
    ("oci-dir://{tmp}/a:b/layout:v1@" + DIGEST, Scheme.oci_dir, "a:b/layout", "v1", DIGEST, True),
    ("oci-dir://{tmp}/c:d", Scheme.oci_dir, "c:d", None, None, True),  # the colon is the directory's
    ("oci-dir://{tmp}/c:d:v2", Scheme.oci_dir, "c:d", "v2", None, True),
    # Not there yet (an export destination): the path ends at the first ':' below what exists.
    ("oci-dir://{tmp}/a:b/out:v3", Scheme.oci_dir, "a:b/out", "v3", None, True),
    ("oci-dir://{tmp}/a:b/out:test/image:1", Scheme.oci_dir, "a:b/out", "test/image:1", None, True),
    ("oci-dir://{tmp}/new", Scheme.oci_dir, "new", None, None, True),
    ("docker-archive://{tmp}/arch.tar", Scheme.docker_archive, "arch.tar", None, None, True),
    ("docker-archive://{tmp}/arch.tar:app:2", Scheme.docker_archive, "arch.tar", "app:2", None, True),
    ("fs://{tmp}/a:b", Scheme.fs, "a:b", None, None, True),  # fs:// and sbom:// have no tag
    ("sbom://{tmp}/s:1.json", Scheme.sbom, "s:1.json", None, None, True),
]


@pytest.mark.parametrize(("text", "scheme", "path", "tag", "digest", "explicit"), PARSED, ids=str)
def test_every_form_parses(
    tmp: Path,
    text: str,
    scheme: Scheme,
    path: str | None,
    tag: str | None,
    digest: str | None,
    explicit: bool,
) -> None:
    written = text.format(tmp=tmp)
    ref = parse_image_ref(written)
    assert ref == ImageRef(written, scheme, None if path is None else tmp / path, tag, digest, explicit)
    assert parse_image_ref(ref) is ref and str(ref) == written


REFUSED = [
    ("", "empty image reference"),
    ("oci-dir://", "oci-dir:// names no path"),
    ("oci-dir://:tag", "oci-dir:// names no path"),
    ("fs://", "fs:// names no path"),
    ("registry://", "registry:// names no repository"),
    ("ftp://host/x", "unknown image reference scheme 'ftp://'"),
    ("store://bastion/python", "unknown image reference scheme 'store://'"),
    ("oci-dir:///tmp/x\x00y", "contains a control character"),
    ("fs:///tmp/x\ny", "contains a control character"),
    ("oci-dir:///tmp/" + "x" * 5000, "longer than 4096 characters"),
    ("registry://localhost:5000/UPPER", "invalid repository"),
    ("registry://localhost:5000/app:" + "t" * 200, "invalid tag"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=lambda v: repr(v)[:40])
def test_bad_references_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_image_ref(text)
    assert "\n" not in caught.value.diagnostic() and len(caught.value.diagnostic()) < 600


def test_a_name_too_long_for_the_filesystem_is_a_path_not_a_crash(tmp_path: Path) -> None:
    long = f"{tmp_path}/{'x' * 300}:tag"  # ENAMETOOLONG while looking for the layout
    ref = parse_image_ref(f"oci-dir://{long}")
    assert (ref.path, ref.tag) == (tmp_path / ("x" * 300), "tag")


@pytest.mark.parametrize(
    ("text", "accepted", "message"),
    [
        ("sbom:///x.json", {Scheme.store, Scheme.oci_dir}, "names an SBOM document, not an image"),
        ("fs:///x", {Scheme.store, Scheme.oci_dir, Scheme.registry}, "fs:// images carry no attestations"),
        ("docker-archive:///x.tar", {Scheme.store, Scheme.registry}, "docker-archive:// images carry no"),
        ("bastion/python:3.11", {Scheme.registry}, "does not take a local store name"),
        ("oci-dir:///x", {Scheme.store}, "does not take oci-dir://PATH"),
    ],
)
def test_each_use_refuses_the_schemes_it_does_not_take(
    text: str, accepted: set[Scheme], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        parse_image_ref(text).require(accepted, "`bastion x`")


def test_a_registry_name_without_the_scheme_is_taken_where_store_names_are() -> None:
    ref = parse_image_ref("localhost:5000/app:1")
    assert ref.store_first and ref.require({Scheme.store}, "x") is ref
    assert not parse_image_ref("registry://localhost:5000/app:1").store_first
    with pytest.raises(InputError, match="does not take"):
        parse_image_ref("registry://localhost:5000/app:1").require({Scheme.store}, "x")
