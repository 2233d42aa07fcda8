"""Go modules built into ELF executables, from the build information the Go linker embeds.

No maintained Python library reads Go build information, so this is written here, reading only what
is needed: the ELF header, the section headers and their name table, and the ``.go.buildinfo``
section (or, for binaries without section headers, the first 64 KiB of the first writable
``PT_LOAD`` segment, searched for the magic at 16-byte alignment, as Go's own ``debug/buildinfo``
does). Only executable regular files (an ``x`` bit in the mode the layer records) that start with
``\\x7fELF`` are looked at: the Go linker writes executables, and opening every library and data
file of an image to read four bytes was a third of the scan.

The build information (Go's ``debug/buildinfo``): a 32-byte header, ``"\\xff Go buildinf:"``, the
pointer size, a flags byte; with flag 2 (Go 1.18 and later, "version inline") the Go version and the
module information follow as uvarint-length-prefixed strings. Older binaries point to Go strings
through virtual addresses instead; they are not read (Go 1.17 and older: no module list to report
beyond what ``go version -m`` prints from the same pointers, and unsupported toolchains today).

Module information (``runtime/debug.BuildInfo`` text form) between two 16-byte sentinels, one line
each: ``path`` (main package), ``mod`` (main module), ``dep`` (a dependency), ``=>`` (a replacement of
the line before: the replacement is what was built, so it is reported), ``build`` (settings).

Reported: the main module (``mod``; the ``path`` when built outside module mode, as Debian builds
Go programs; version ``(devel)`` as recorded), every dependency, and the standard library as
``stdlib`` at the toolchain version (``pkg:golang/stdlib@1.19.8``), as vulnerability databases
(the Go vulnerability database, OSV) name it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from packageurl import PackageURL

from bastion.image import FileKind, ImageTarget
from bastion.sbom._catalog._base import location
from bastion.sbom._model import Location, Package, PackageType

NAME = "go-module-binary"
_ELF_MAGIC = b"\x7fELF"
_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_FLAG_INLINE = 0x2
_SECTION = b".go.buildinfo"
_SEARCH = 64 * 1024  # debug/buildinfo's dataSize
_MAX_SECTION = 4 * 1024 * 1024
_MAX_TABLE = 1024 * 1024
_PT_LOAD, _PF_W = 1, 0x2
# runtime/debug: modinfo is framed by these sentinels (cmd/go/internal/modload "infoStart"/"infoEnd").
_INFO_START_LEN = _INFO_END_LEN = 16


@dataclass(frozen=True)
class BuildInfo:
    go_version: str
    path: str
    main: tuple[str, str] | None  # (module path, version)
    deps: tuple[tuple[str, str], ...]


class GoBinaryCataloger:
    name = NAME

    def catalog(self, target: ImageTarget) -> list[Package]:
        packages: list[Package] = []
        for info in target.walk():
            if info.kind is not FileKind.FILE or info.size < 64 or not info.mode & 0o111:
                continue
            try:
                with target.open(info.path) as f:
                    if f.read(4) != _ELF_MAGIC:
                        continue
                    build = read_buildinfo(f)
            except OSError:
                continue
            if build is not None:
                packages += _packages(target, info.path, build)
        return packages


def _packages(target: ImageTarget, path: str, build: BuildInfo) -> list[Package]:
    where = [location(target, path)]
    modules: list[tuple[str, str]] = []
    if build.main is not None:
        modules.append(build.main)
    elif build.path:
        modules.append((build.path, "(devel)"))
    modules += build.deps
    packages = [_package(module, version, where) for module, version in modules]
    toolchain = build.go_version.split()[0] if build.go_version else ""
    if toolchain.startswith("go") and toolchain[2:3].isdigit():
        packages.append(_package("stdlib", toolchain[2:], where))
    return packages


def _package(module: str, version: str, where: list[Location]) -> Package:
    namespace, _, name = module.rpartition("/")
    return Package(
        type=PackageType.GOLANG,
        name=module,
        version=version,
        purl=PackageURL("golang", namespace or None, name, version).to_string(),
        namespace=namespace or None,
        locations=list(where),
        found_by=NAME,
    )


# -- ELF --------------------------------------------------------------------------------------------


def read_buildinfo(f: BinaryIO) -> BuildInfo | None:
    """The Go build information of the ELF file ``f``, or ``None`` (not Go, or pre-1.18 format)."""
    f.seek(0)
    ident = f.read(16)
    if len(ident) < 16 or ident[:4] != _ELF_MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    is64, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    header = f.read(48 if is64 else 36)
    fmt = order + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH")
    if len(header) < struct.calcsize(fmt):
        return None
    (_, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack(
        fmt, header
    )
    data = _section(f, order, is64, shoff, shentsize, shnum, shstrndx)
    if data is None:
        data = _writable_segment(f, order, is64, phoff, phentsize, phnum)
    return None if data is None else parse_buildinfo(data)


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _section(
    f: BinaryIO, order: str, is64: bool, shoff: int, shentsize: int, shnum: int, shstrndx: int
) -> bytes | None:
    fmt = order + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    if shoff == 0 or shnum == 0 or shentsize < struct.calcsize(fmt) or shnum * shentsize > _MAX_TABLE:
        return None
    table = _read_at(f, shoff, shnum * shentsize)
    if len(table) < shnum * shentsize or shstrndx >= shnum:
        return None
    sections = [struct.unpack_from(fmt, table, i * shentsize) for i in range(shnum)]
    # (name, type, flags, addr, offset, size, ...) in both layouts once unpacked this way.
    names_offset, names_size = sections[shstrndx][4], sections[shstrndx][5]
    names = _read_at(f, names_offset, min(names_size, _MAX_TABLE))
    for section in sections:
        start = section[0]
        if names[start : start + len(_SECTION) + 1] == _SECTION + b"\0":
            return _read_at(f, section[4], min(section[5], _MAX_SECTION))
    return None


def _writable_segment(
    f: BinaryIO, order: str, is64: bool, phoff: int, phentsize: int, phnum: int
) -> bytes | None:
    fmt = order + ("IIQQQQQQ" if is64 else "IIIIIIII")
    if phoff == 0 or phentsize < struct.calcsize(fmt) or phnum * phentsize > _MAX_TABLE:
        return None
    table = _read_at(f, phoff, phnum * phentsize)
    for i in range(min(phnum, len(table) // phentsize)):
        entry = struct.unpack_from(fmt, table, i * phentsize)
        p_type, flags, offset, filesz = (
            (entry[0], entry[1], entry[2], entry[5]) if is64 else (entry[0], entry[6], entry[1], entry[4])
        )
        if p_type == _PT_LOAD and flags & _PF_W:
            data = _read_at(f, offset, min(filesz, _SEARCH))
            for start in range(0, len(data) - 32, 16):  # debug/buildinfo: buildInfoAlign = 16
                if data[start : start + len(_BUILDINFO_MAGIC)] == _BUILDINFO_MAGIC:
                    return data[start:]
            return None
    return None


# -- build information -----------------------------------------------------------------------------


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """encoding/binary.Uvarint: 7 bits a byte, least significant first."""
    value = shift = 0
    while pos < len(data) and shift <= 63:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad uvarint")


def parse_buildinfo(data: bytes) -> BuildInfo | None:
    start = data.find(_BUILDINFO_MAGIC)
    if start < 0 or len(data) < start + 32:
        return None
    data = data[start:]
    if not data[15] & _FLAG_INLINE:
        return None  # pre-Go 1.18 pointer format: not read (see the module docs)
    try:
        length, pos = _uvarint(data, 32)
        version = data[pos : pos + length].decode("utf-8", "replace")
        length, pos = _uvarint(data, pos + length)
        modinfo = data[pos : pos + length]
    except ValueError:
        return None
    if (
        len(modinfo) >= _INFO_START_LEN + _INFO_END_LEN + 1
        and modinfo[-_INFO_END_LEN - 1 : -_INFO_END_LEN] == b"\n"
    ):
        modinfo = modinfo[_INFO_START_LEN:-_INFO_END_LEN]
    return parse_modinfo(version, modinfo.decode("utf-8", "replace"))


def parse_modinfo(go_version: str, text: str) -> BuildInfo:
    path = ""
    main: tuple[str, str] | None = None
    deps: list[tuple[str, str]] = []
    last: str | None = None  # which of main/deps the previous mod/dep line filled
    for line in text.splitlines():
        fields = line.split("\t")
        key = fields[0]
        if key == "path" and len(fields) >= 2:
            path = fields[1]
        elif key in ("mod", "dep") and len(fields) >= 3:
            module = (fields[1], fields[2] or "(devel)")
            if key == "mod":
                main, last = module, "mod"
            else:
                deps.append(module)
                last = "dep"
        elif key == "=>" and len(fields) >= 2 and last is not None:
            replaced = (fields[1], (fields[2] if len(fields) > 2 else "") or "(devel)")
            if last == "mod":
                main = replaced
            else:
                deps[-1] = replaced
            last = None
    return BuildInfo(go_version, path, main, tuple(deps))
