"""The deterministic layer writer: same entries, same bytes; the archive rules of DESIGN.md."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from bastion.errors import InternalError
from bastion.oci import (
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_LAYER_ZSTD,
    Compression,
    LayerEntry,
    Store,
    add_layer,
    write_layer,
    write_tar,
)

EPOCH = 1_700_000_000
Entries = Callable[..., list[LayerEntry]]


def _layer_bytes(entries: list[LayerEntry], compression: Compression = Compression.GZIP) -> bytes:
    out = io.BytesIO()
    write_layer(entries, out, source_date_epoch=EPOCH, compression=compression)
    return out.getvalue()


def _members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        return tar.getmembers()


def test_same_entries_give_identical_layer(make_entries: Entries, tmp_path: Path) -> None:
    first = add_layer(Store(tmp_path / "a"), make_entries(), source_date_epoch=EPOCH)
    second = add_layer(Store(tmp_path / "b"), make_entries(), source_date_epoch=EPOCH)
    assert first == second
    assert first.descriptor.media_type == MEDIA_TYPE_LAYER_GZIP
    assert _layer_bytes(make_entries()) == _layer_bytes(make_entries())


def test_input_order_does_not_matter(make_entries: Entries) -> None:
    shuffled = make_entries()
    random.Random(7).shuffle(shuffled)
    assert _layer_bytes(shuffled) == _layer_bytes(make_entries())


def test_mtimes_after_epoch_are_clamped(make_entries: Entries) -> None:
    at_epoch = _layer_bytes(make_entries(mtime=EPOCH))
    assert _layer_bytes(make_entries(mtime=EPOCH + 1)) == at_epoch
    assert _layer_bytes(make_entries(mtime=EPOCH + 10**6)) == at_epoch
    assert _layer_bytes(make_entries(mtime=EPOCH - 1)) != at_epoch  # older mtimes are kept
    assert {m.mtime for m in _members(at_epoch)} == {EPOCH}


def test_digests_describe_the_bytes(make_entries: Entries) -> None:
    out = io.BytesIO()
    layer = write_layer(make_entries(), out, source_date_epoch=EPOCH)
    blob = out.getvalue()
    assert layer.descriptor.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.descriptor.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    tar_only = io.BytesIO()
    assert write_tar(make_entries(), tar_only, source_date_epoch=EPOCH) == layer.diff_id
    assert tar_only.getvalue() == gzip.decompress(blob)


def test_gzip_header_has_no_mtime_and_no_name(make_entries: Entries) -> None:
    blob = _layer_bytes(make_entries())
    assert blob[:3] == b"\x1f\x8b\x08"  # gzip, deflate (RFC 1952 2.3.1)
    flags = blob[3]
    assert flags & 0x08 == 0, "FNAME flag set"
    assert flags & 0x10 == 0, "FCOMMENT flag set"
    assert blob[4:8] == b"\0\0\0\0", "MTIME is not zero"


def test_tar_entries_sorted_with_numeric_owners(make_entries: Entries) -> None:
    members = _members(_layer_bytes(make_entries()))
    names = [m.name for m in members]
    assert names == sorted(e.path for e in make_entries())
    for member in members:
        assert member.uname == "" and member.gname == ""
    by_name = {m.name: m for m in members}
    assert (by_name["home/nonroot"].uid, by_name["home/nonroot"].gid) == (65532, 65532)
    assert by_name["bin/sg"].gid == 42
    long_name = next(n for n in names if n.endswith(".txt"))
    assert len(long_name) > 100 and "caf\u00e9" in long_name  # pax keeps long UTF-8 paths intact


def test_special_mode_bits_kept(make_entries: Entries) -> None:
    by_name = {m.name: m for m in _members(_layer_bytes(make_entries()))}
    assert by_name["bin/su"].mode == 0o4755
    assert by_name["bin/sg"].mode == 0o2755
    assert by_name["tmp"].mode == 0o1777
    assert by_name["home/nonroot"].mode == 0o700


def test_hardlink_sorting_before_its_target_still_extracts(make_entries: Entries, tmp_path: Path) -> None:
    blob = _layer_bytes(make_entries())
    by_name = {m.name: m for m in _members(blob)}
    # "bin/aa-alias" sorts before "bin/su": it carries the content and "bin/su" links to it.
    assert by_name["bin/aa-alias"].isfile()
    assert by_name["bin/su"].islnk() and by_name["bin/su"].linkname == "bin/aa-alias"
    dest = tmp_path / "x"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        # extraction filters came in Python 3.11.4; Debian 12's 3.11.2 extracts as "fully_trusted" does
        tar.extractall(dest, **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))
    assert (dest / "bin/su").read_bytes() == b"#!/bin/sh\necho su\n"
    assert (dest / "bin/su").stat().st_ino == (dest / "bin/aa-alias").stat().st_ino


def test_zstd_layer_has_same_diff_id(make_entries: Entries) -> None:
    out = io.BytesIO()
    zst = write_layer(make_entries(), out, source_date_epoch=EPOCH, compression=Compression.ZSTD)
    gz = write_layer(make_entries(), io.BytesIO(), source_date_epoch=EPOCH)
    assert zst.descriptor.media_type == MEDIA_TYPE_LAYER_ZSTD
    assert zst.diff_id == gz.diff_id
    assert zst.descriptor.digest != gz.descriptor.digest
    plain = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(out.getvalue())).read()
    assert "sha256:" + hashlib.sha256(plain).hexdigest() == zst.diff_id
    assert _layer_bytes(make_entries(), Compression.ZSTD) == out.getvalue()


def test_add_layer_leaves_only_the_blob(make_entries: Entries, store: Store) -> None:
    layer = add_layer(store, make_entries(), source_date_epoch=EPOCH)
    assert [p.name for p in store.blobs_dir.iterdir()] == [layer.descriptor.digest.removeprefix("sha256:")]
    store.verify_blob(layer.descriptor)


def test_failed_layer_write_leaves_no_temp_file(store: Store, tmp_path: Path) -> None:
    entries = [
        LayerEntry("etc", "dir", 0o755, 0, 0, 0),
        LayerEntry("etc/gone", "file", 0o644, 0, 0, 0, source=tmp_path / "does-not-exist"),
    ]
    with pytest.raises(FileNotFoundError):
        add_layer(store, entries, source_date_epoch=EPOCH)
    assert list(store.blobs_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([LayerEntry("a/b", "file", 0o644, 0, 0, 0, data=b"")], "no parent directory"),
        (
            [LayerEntry("a", "file", 0o644, 0, 0, 0, data=b""), LayerEntry("a/b", "dir", 0o755, 0, 0, 0)],
            "parent",
        ),
        ([LayerEntry("a", "dir", 0o755, 0, 0, 0), LayerEntry("a", "dir", 0o755, 0, 0, 0)], "duplicate"),
        ([LayerEntry("l", "hardlink", 0o644, 0, 0, 0, linkname="missing")], "hardlink"),
    ],
)
def test_inconsistent_entries_are_bugs(entries: list[LayerEntry], message: str) -> None:
    with pytest.raises(InternalError, match=message):
        write_tar(entries, io.BytesIO(), source_date_epoch=EPOCH)


@pytest.mark.parametrize("path", ["/etc", "etc/", "a/../b", "./a", "a//b", ""])
def test_paths_must_be_normalised_and_relative(path: str) -> None:
    with pytest.raises(InternalError):
        LayerEntry(path, "dir", 0o755, 0, 0, 0)


def test_entry_shape_is_checked() -> None:
    with pytest.raises(InternalError):
        LayerEntry("f", "file", 0o644, 0, 0, 0)  # no content
    with pytest.raises(InternalError):
        LayerEntry("d", "dir", 0o755, 0, 0, 0, data=b"x")
    with pytest.raises(InternalError):
        LayerEntry("s", "symlink", 0o777, 0, 0, 0)  # no target
    with pytest.raises(InternalError):
        LayerEntry("f", "file", 0o100644, 0, 0, 0, data=b"")  # file type bits are not mode bits
