"""Layers written in parts, one gzip member each, with compressed parts kept in a cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from bastion.errors import IntegrityError, InternalError
from bastion.oci import LayerEntry, PartCache, Slice, SliceReader, Store, add_layer_parts, write_tar
from bastion.oci import _parts as parts_module

from .conftest import EPOCH

Entries = Callable[..., list[LayerEntry]]


def _split(entries: list[LayerEntry]) -> list[list[LayerEntry]]:
    """Directories first, then the files of each top-level directory (hardlinks with their target)."""
    dirs = [e for e in entries if e.kind == "dir"]
    others: dict[str, list[LayerEntry]] = {}
    for entry in entries:
        if entry.kind != "dir":
            top = (entry.linkname if entry.kind == "hardlink" else entry.path).split("/")[0]
            others.setdefault(top, []).append(entry)
    return [dirs, *others.values()]


def _gzip_members(blob: bytes) -> int:
    count, rest = 0, blob
    while rest:
        inflater = zlib.decompressobj(31)
        inflater.decompress(rest)
        rest = inflater.unused_data
        count += 1
    return count


def test_a_layer_of_parts_is_one_tar_of_several_members(make_entries: Entries, store: Store) -> None:
    entries = make_entries()
    layer = add_layer_parts(store, _split(entries), source_date_epoch=EPOCH)
    blob = store.read_blob(layer.descriptor.digest)
    assert layer.descriptor.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert _gzip_members(blob) == len(_split(entries)) + 1  # and one for the end of the archive
    tar_bytes = gzip.decompress(blob)  # every member, concatenated (RFC 1952 2.2)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    assert len(tar_bytes) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        names = tar.getnames()
        content = tar.extractfile("bin/aa-alias")
        assert content is not None and content.read() == b"#!/bin/sh\necho su\n"  # content first
        by_name = {m.name: m for m in tar.getmembers()}
    # Directories first, then each part sorted: the same set of entries as write_tar writes.
    dirs = sorted(e.path for e in entries if e.kind == "dir")
    assert names[: len(dirs)] == dirs
    assert sorted(names) == sorted(e.path for e in entries)
    whole = io.BytesIO()
    write_tar(entries, whole, source_date_epoch=EPOCH)
    with tarfile.open(fileobj=io.BytesIO(whole.getvalue())) as tar:
        for member in tar.getmembers():
            mine = by_name[member.name]
            assert (mine.mode, mine.uid, mine.gid, mine.mtime, mine.size, mine.linkname, mine.type) == (
                member.mode, member.uid, member.gid, member.mtime, member.size, member.linkname, member.type
            )  # fmt: skip


def test_cached_parts_give_the_same_blob_and_are_not_compressed_again(
    make_entries: Entries, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PartCache(tmp_path / "parts")
    plain = add_layer_parts(store, _split(make_entries()), source_date_epoch=EPOCH)
    first = add_layer_parts(store, _split(make_entries()), source_date_epoch=EPOCH, cache=cache)
    assert first == plain
    kept = [p for p in cache.root.rglob("*") if p.is_file()]
    assert len(kept) == len(_split(make_entries()))

    made: list[object] = []
    real = gzip.GzipFile

    def counting(*args: object, **kwargs: object) -> gzip.GzipFile:
        made.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(parts_module.gzip, "GzipFile", counting)
        assert add_layer_parts(store, _split(make_entries()), source_date_epoch=EPOCH, cache=cache) == plain
    assert len(made) == 1  # only the end-of-archive member, which is never cached
    # A damaged member (bit rot) is noticed by its digest and made again: same blob.
    victim = max(kept, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    again = add_layer_parts(store, _split(make_entries()), source_date_epoch=EPOCH, cache=cache)
    assert again == plain
    assert victim.read_bytes() != bytes(data)


def test_a_member_for_other_bytes_is_not_used(make_entries: Entries, store: Store, tmp_path: Path) -> None:
    """A member whose own digest is right but that holds other data (trailer CRC and size) is refused."""
    cache = PartCache(tmp_path / "parts")
    parts = _split(make_entries())
    plain = add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    files = sorted(p for p in cache.root.rglob("*") if p.is_file())
    other = gzip.compress(b"x" * 1024, mtime=0)
    for path in files:  # whole members, honest about their own size, standing for other bytes
        path.write_bytes(f"{hashlib.sha256(other).hexdigest()} 1024\n".encode() + other)
    assert add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache) == plain


def test_slices_are_read_from_their_file(store: Store, tmp_path: Path) -> None:
    packed = tmp_path / "data"
    packed.write_bytes(b"AAAAhello worldBBBB")
    entries = [
        LayerEntry("opt", "dir", 0o755, 0, 0, EPOCH),
        LayerEntry("opt/hello", "file", 0o644, 0, 0, EPOCH, source=Slice(packed, 4, 11)),
    ]
    layer = add_layer_parts(store, [entries[:1], entries[1:]], source_date_epoch=EPOCH)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(store.read_blob(layer.descriptor.digest)))) as tar:
        member = tar.extractfile("opt/hello")
        assert member is not None and member.read() == b"hello world"


def test_big_parts_are_split(make_entries: Entries, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parts_module, "PART_LIMIT", 100)
    entries = make_entries()
    layer = add_layer_parts(store, _split(entries), source_date_epoch=EPOCH)
    blob = store.read_blob(layer.descriptor.digest)
    assert _gzip_members(blob) > len(_split(entries)) + 1
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        assert sorted(tar.getnames()) == sorted(e.path for e in entries)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (
            [
                [LayerEntry("a/f", "file", 0o644, 0, 0, EPOCH, data=b"")],
                [LayerEntry("a", "dir", 0o755, 0, 0, EPOCH)],
            ],
            "comes before its directory",
        ),
        (
            [
                [LayerEntry("f", "file", 0o644, 0, 0, EPOCH, data=b"")],
                [LayerEntry("g", "hardlink", 0o644, 0, 0, EPOCH, linkname="f")],
            ],
            "not in its target's part",
        ),
    ],
)
def test_part_order_mistakes_are_bugs(store: Store, parts: list[list[LayerEntry]], message: str) -> None:
    with pytest.raises(InternalError, match=message):
        add_layer_parts(store, parts, source_date_epoch=EPOCH)


@pytest.mark.skipif(shutil.which("gzip") is None, reason="gzip is not installed")
def test_gzip_tool_reads_every_member(make_entries: Entries, store: Store) -> None:
    layer = add_layer_parts(store, _split(make_entries()), source_date_epoch=EPOCH)
    blob = store.read_blob(layer.descriptor.digest)
    out = subprocess.run(["gzip", "-dc"], input=blob, capture_output=True, check=True).stdout
    assert layer.diff_id == "sha256:" + hashlib.sha256(out).hexdigest()


def _sliced(tmp_path: Path, origin: str) -> tuple[Path, list[list[LayerEntry]]]:
    packed = tmp_path / "data"
    packed.write_bytes(bytes(range(256)) * 64 + b"tail")
    entries = [
        LayerEntry("opt", "dir", 0o755, 0, 0, EPOCH),
        LayerEntry("opt/a", "file", 0o644, 0, 0, EPOCH, source=Slice(packed, 0, 8192, origin)),
        LayerEntry("opt/b", "file", 0o755, 0, 0, EPOCH, source=Slice(packed, 8192, 8196, origin)),
        LayerEntry("opt/c", "file", 0o644, 0, 0, EPOCH, data=b"generated\n"),
    ]
    return packed, [entries[:1], entries[1:3], entries[3:]]


def test_a_layer_of_named_parts_seen_before_is_written_without_reading_them(
    store: Store, tmp_path: Path
) -> None:
    cache = PartCache(tmp_path / "parts")
    packed, parts = _sliced(tmp_path, "unpacked-1:" + "ab" * 32)
    first = add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    tar_bytes = gzip.decompress(store.read_blob(first.descriptor.digest))
    assert first.diff_id == "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    assert first == add_layer_parts(store, parts, source_date_epoch=EPOCH)  # same as with no cache
    packed.write_bytes(b"")  # the origin names the bytes: they are not read again
    assert add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache) == first
    # A damaged diff_id record is not believed: the layer is made from the bytes (here: gone).
    (record,) = (cache.root / "layers").iterdir()
    record.write_text(record.read_text().replace("sha256:", "sha256:0", 1))
    with pytest.raises(IntegrityError, match="0 bytes where 8192 were unpacked"):
        add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)


def test_parts_without_a_name_for_their_bytes_are_found_by_content(store: Store, tmp_path: Path) -> None:
    cache = PartCache(tmp_path / "parts")
    packed, parts = _sliced(tmp_path, "")
    first = add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    assert not (cache.root / "layers").exists()  # no diff_id kept: it could not be found unread
    packed.write_bytes(packed.read_bytes()[:-1] + b"!")  # other bytes, same slices: another layer
    second = add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    assert second.diff_id != first.diff_id
    assert second == add_layer_parts(store, parts, source_date_epoch=EPOCH)


def test_one_part_is_the_same_tar_as_write_tar(make_entries: Entries, store: Store) -> None:
    entries = make_entries()
    layer = add_layer_parts(store, [entries], source_date_epoch=EPOCH)
    whole = io.BytesIO()
    write_tar(entries, whole, source_date_epoch=EPOCH)
    assert gzip.decompress(store.read_blob(layer.descriptor.digest)) == whole.getvalue()


def test_a_slice_whose_bytes_changed_is_refused(store: Store, tmp_path: Path) -> None:
    packed = tmp_path / "data"
    packed.write_bytes(b"good bytes")
    entry = LayerEntry(
        "f",
        "file",
        0o644,
        0,
        0,
        EPOCH,
        source=Slice(packed, 0, 10, "o", hashlib.sha256(b"good bytes").hexdigest()),
    )
    add_layer_parts(store, [[entry]], source_date_epoch=EPOCH)
    packed.write_bytes(b"evil bytes")  # same size, other bytes
    with pytest.raises(IntegrityError, match="do not match the SHA256"):
        add_layer_parts(store, [[entry]], source_date_epoch=EPOCH, cache=PartCache(tmp_path / "parts"))


def test_a_diff_id_is_used_only_with_the_members_it_was_computed_with(store: Store, tmp_path: Path) -> None:
    cache = PartCache(tmp_path / "parts")
    _, parts = _sliced(tmp_path, "unpacked-v2:" + "cd" * 32)
    first = add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    # Another member under the same key, whole in itself (its own digest and size line are right).
    (record,) = (cache.root / "layers").iterdir()
    key = record.read_text().split("\n")[1]  # the first part's member digest...
    victim = next(p for p in cache.root.rglob("*") if p.is_file() and p.parent.name != "layers"
                  and hashlib.sha256(p.read_bytes().partition(b"\n")[2]).hexdigest() == key)  # fmt: skip
    other = gzip.compress(b"\0" * 512, mtime=0)
    victim.write_bytes(f"{hashlib.sha256(other).hexdigest()} 512\n".encode() + other)
    assert add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache) == first


def test_an_old_temp_file_beside_a_new_member_is_removed(store: Store, tmp_path: Path) -> None:
    cache = PartCache(tmp_path / "parts")
    _, parts = _sliced(tmp_path, "unpacked-v2:" + "ef" * 32)
    add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    (record,) = (cache.root / "layers").iterdir()
    old, young = record.parent / ".tmp-old", record.parent / ".tmp-young"
    old.write_bytes(b"half a record")
    young.write_bytes(b"being written")
    os.utime(old, (1, 1))
    record.unlink()  # the next layer write records its diff_id here again
    add_layer_parts(store, parts, source_date_epoch=EPOCH, cache=cache)
    assert not old.exists() and young.exists()


@pytest.mark.parametrize("mappable", [True, False])
def test_slice_reader_reads_mapped_and_unmappable_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mappable: bool
) -> None:
    """Slices come out of a memory map, or through pread where the filesystem will not map a file;
    the same bytes, fewer only where the file ends, and an empty file has none."""
    import mmap

    from bastion.oci import SliceReader

    if not mappable:

        def refuse(*args: object, **kwargs: object) -> mmap.mmap:
            raise OSError(19, "No such device")

        monkeypatch.setattr(mmap, "mmap", refuse)
    data = bytes(range(256)) * 40
    packed = tmp_path / "packed"
    packed.write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    with SliceReader() as reader:
        assert reader.read(Slice(packed, 100, 1000)) == data[100:1100]
        assert reader.read(Slice(packed, 100, 1000), 10) == data[100:110]
        assert reader.read(Slice(packed, len(data) - 5, 20)) == data[-5:]  # past the end: short
        assert reader.read(Slice(tmp_path / "empty", 0, 0)) == b""
        whole = Slice(packed, 7, 300, sha256=hashlib.sha256(data[7:307]).hexdigest())
        assert reader.read_checked(whole, "f") == data[7:307]
        with pytest.raises(IntegrityError, match="5 bytes where 20 were unpacked"):
            reader.read_checked(Slice(packed, len(data) - 5, 20), "f")


def _resident_kib(path: Path) -> int:
    """What of ``path``'s memory maps is resident in this process (/proc/self/smaps, Rss)."""
    resident, current = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            current = fields[-1] == str(path)
        elif current and fields[0] == "Rss:":
            resident += int(fields[1])
    return resident


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_slice_reader_keeps_few_pages_of_its_maps_resident(tmp_path: Path) -> None:
    """A build reads hundreds of MiB through maps (the compliance rules read every ELF file whole);
    the pages stay in the page cache, not in the build's resident memory (issue 19: 302 MiB)."""
    data = os.urandom(24 << 20)
    packed = tmp_path / "packed"
    packed.write_bytes(data)
    with SliceReader() as reader:
        assert reader.read(Slice(packed, 4097, 8 << 20)) == data[4097 : 4097 + (8 << 20)]
        assert _resident_kib(packed) < 64  # a long read: its pages given back at once
        small = 16 << 10
        for offset in range(0, 20 << 20, small):  # short reads: given back once they add up
            assert reader.read(Slice(packed, offset, small)) == data[offset : offset + small]
            assert _resident_kib(packed) <= (16 << 10) + 64
        assert reader.read(Slice(packed, 5, 100)) == data[5:105]  # a page given back reads again
