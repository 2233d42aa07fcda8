"""Where packages come from: repositories named in a definition, or the host's apt sources.

apt reads ``/etc/apt/sources.list`` (one-line format) and the files in ``/etc/apt/sources.list.d/``
ending in ``.list`` (one-line) or ``.sources`` (deb822); files with any other ending are ignored, as
apt does (sources.list(5), "SOURCES.LIST.D"). Only ``deb`` entries matter to us; ``deb-src`` is skipped.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from debian.deb822 import Deb822

from bastion.errors import InputError

APT_ETC = Path("/etc/apt")


@dataclass(frozen=True)
class Source:
    """One repository: a base URI, its suites and components, and the keyring that must sign it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    keyring: Path | None = None
    architectures: tuple[str, ...] = field(default=())
    origin: str = ""  # where this entry was read, for messages

    def __post_init__(self) -> None:
        if not self.uri.startswith(("http://", "https://", "file:/")):
            raise InputError(
                f"unsupported repository URI {self.uri!r} (http, https and file are)", where=self.origin
            )
        if not self.suites:
            raise InputError("repository has no suites", where=self.origin)
        for suite in self.suites:
            if suite.endswith("/"):
                raise InputError(f"flat repositories ({suite!r}) are not supported", where=self.origin)
        if not self.components:
            raise InputError("repository has no components", where=self.origin)


def host_sources(etc: Path = APT_ETC) -> list[Source]:
    """Read the host's apt sources, in the order apt reads them."""
    files: list[Path] = []
    main_list = etc / "sources.list"
    if main_list.is_file():
        files.append(main_list)
    parts = etc / "sources.list.d"
    if parts.is_dir():
        files.extend(sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources") and p.is_file()))
    sources: list[Source] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        sources.extend(
            parse_deb822_sources(text, str(path))
            if path.suffix == ".sources"
            else parse_one_line_sources(text, str(path))
        )
    if not sources:
        raise InputError(
            f"no apt sources found under {etc} and the definition names no repositories",
            hint="add contents.repositories to the definition",
        )
    return sources


_OPTIONS = re.compile(r"^\[([^\]]*)\]\s*")


def parse_one_line_sources(text: str, origin: str) -> list[Source]:
    """Parse the one-line format: ``deb [opt=val ...] uri suite [component ...]``."""
    sources: list[Source] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{origin}:{lineno}"
        kind, _, rest = line.partition(" ")
        if kind == "deb-src":
            continue
        if kind != "deb":
            raise InputError(f"expected 'deb' or 'deb-src', found {kind!r}", where=where)
        rest = rest.strip()
        options: dict[str, str] = {}
        match = _OPTIONS.match(rest)
        if match:
            for opt in match.group(1).split():
                key, sep, value = opt.partition("=")
                if not sep:
                    raise InputError(f"malformed option {opt!r}", where=where)
                options[key] = value
            rest = rest[match.end() :]
        try:
            words = shlex.split(rest)
        except ValueError as exc:
            raise InputError(f"malformed line: {exc}", where=where) from None
        if len(words) < 2:
            raise InputError("expected a URI and a suite", where=where)
        if options.get("enabled", "yes") == "no":
            continue
        sources.append(
            Source(
                uri=words[0],
                suites=(words[1],),
                components=tuple(words[2:]),
                keyring=_keyring(options.get("signed-by"), where),
                architectures=tuple(a for a in options.get("arch", "").split(",") if a),
                origin=where,
            )
        )
    return sources


def parse_deb822_sources(text: str, origin: str) -> list[Source]:
    """Parse the deb822 format (sources.list(5), "DEB822-STYLE FORMAT")."""
    sources: list[Source] = []
    # Deb822 skips comment lines; count stanzas to name them in errors.
    for number, para in enumerate(_paragraphs(text), start=1):
        where = f"{origin} (stanza {number})"
        missing = [f for f in ("Types", "URIs", "Suites") if f not in para]
        if missing:
            raise InputError(f"missing field(s) {', '.join(missing)}", where=where)
        if para.get("Enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in para["Types"].split():
            continue
        suites = tuple(para["Suites"].split())
        signed_by = para.get("Signed-By", "").strip()
        if "\n" in signed_by or signed_by.startswith("-----BEGIN"):
            raise InputError(
                "an inline Signed-By key block is not supported",
                where=where,
                hint="name a keyring file instead",
            )
        for uri in para["URIs"].split():
            sources.append(
                Source(
                    uri=uri,
                    suites=suites,
                    components=tuple(para.get("Components", "").split()),
                    keyring=_keyring(signed_by or None, where),
                    architectures=tuple(para.get("Architectures", "").split()),
                    origin=where,
                )
            )
    return sources


def _paragraphs(text: str) -> Iterable[dict[str, str]]:
    for para in Deb822.iter_paragraphs(text.splitlines(keepends=True)):
        if para:
            yield {k: str(v) for k, v in para.items()}


def _keyring(value: str | None, where: str) -> Path | None:
    if not value:
        return None
    # Signed-By may also be a list of fingerprints (sources.list(5)); we need a keyring file.
    path = Path(value.split(",")[0].strip())
    if not path.is_absolute():
        raise InputError(f"Signed-By {value!r} is not a keyring file path", where=where)
    return path
