"""Licences: Debian copyright files to SPDX licence expressions, and the helpers writers share.

Machine-readable files (DEP-5, https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/)
are read with python-debian's :mod:`debian.copyright`; the ``License`` field of every ``Files``
paragraph becomes one expression. Short names follow the spec's "License specification" table:
``GPL-2+`` -> ``GPL-2.0-or-later``, ``Expat`` -> ``MIT``, ``Artistic`` -> ``Artistic-1.0-Perl`` (the
Artistic licence "which comes with Perl", as in ``/usr/share/common-licenses/Artistic``), ``Perl`` ->
``Artistic-1.0-Perl OR GPL-1.0-or-later``; other names are looked up case-insensitively in the SPDX
licence list (``BSD-3-clause`` -> ``BSD-3-Clause``). The spec's operators: ``or``, ``and`` (binds
tighter than ``or``), ``, and`` (binds looser than ``or``) and ``<licence> with <keyword> exception``.

Anything that is not on the SPDX list becomes ``LicenseRef-<sanitised name>`` with the text of the
standalone ``License`` paragraph (or the field's own text) in :attr:`License.text`. Invariant: an
expression holds at most one ``LicenseRef-``, so that ``text`` is unambiguously its text; a field
naming two unknown licences becomes a single ``LicenseRef-`` for the whole field, texts concatenated.

Free-text (pre-DEP-5) files are never turned into an SPDX id by guessing: the whole text is kept as
``LicenseRef-<package>-free-text``. Only pointers to ``/usr/share/common-licenses/(L)GPL-N`` whose
preceding text grants "version N ... or (at your option) any later version" are recognised, as
``(L)GPL-N.0-or-later``; unversioned pointers (``GPL``), "either X or Y" choices and anything else are
left to the kept text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from license_expression import ExpressionError, Licensing

from bastion.sbom._model import License, Package

# The Format field of a machine-readable copyright file (DEP-5 section 5.1): the 1.0 URI, or the
# older drafts' URIs (.../dep5, ...copyright-format/...).
_DEP5_FORMAT = re.compile(r"copyright-format|dep-?5", re.IGNORECASE)

__all__ = [
    "ExtractedLicense",
    "checked_license",
    "copyright_licenses",
    "declared_expression",
    "extracted_licenses",
    "is_spdx_id",
    "is_valid_expression",
    "license_ref",
    "parse_copyright",
]

_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.-]+$")
_SYMBOL = re.compile(r"[A-Za-z0-9.+-]+")
# DEP-5 "License specification": versioned GNU families; "+" means "or any later version".
_GNU_FAMILY = re.compile(r"^(AGPL|LGPL|GPL|GFDL|GFDL-NIV)-(\d+(?:\.\d+)?)(\+?)$", re.IGNORECASE)
_EXCEPTION = re.compile(r"^(.+?)\s+with\s+(.+?)\s+exception$", re.IGNORECASE)
# Short names of the DEP-5 table (and common Debian spellings) that are not SPDX ids themselves.
_DEBIAN_NAMES: dict[str, str] = {
    "expat": "MIT",
    "artistic": "Artistic-1.0-Perl",
    "artistic-1": "Artistic-1.0-Perl",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
    "public-domain": "LicenseRef-public-domain",
    "apache-1": "Apache-1.0",
    "apache-2": "Apache-2.0",
    "mpl-1": "MPL-1.0",
    "mpl-2": "MPL-2.0",
    "cc0": "CC0-1.0",
    "zope-1.1": "ZPL-1.1",
    "zope-2.0": "ZPL-2.0",
    "zope-2.1": "ZPL-2.1",
    "psf-2": "PSF-2.0",
    "python-2": "Python-2.0",
    "efl-2": "EFL-2.0",
    "lppl-1.3c": "LPPL-1.3c",
}
_FREE_TEXT_POINTER = re.compile(r"/usr/share/common-licenses/(L?GPL)-(\d(?:\.\d)?)(?![0-9.]*[A-Za-z0-9])")

# python-debian logs a warning for every paragraph it does not recognise; we report nothing per line.
logging.getLogger("debian.copyright").setLevel(logging.ERROR)


@cache
def _licensing() -> Licensing:
    # spdx-tools keeps one index of the SPDX licence list (slow to build: docs/benchmarks.md);
    # validation of the SPDX document uses it too, so share it rather than build a second.
    from spdx_tools.common.spdx_licensing import spdx_licensing

    return spdx_licensing


@cache
def _spdx_ids() -> tuple[dict[str, str], dict[str, str]]:
    """Lower-cased SPDX licence ids and exception ids -> their canonical spelling (non-deprecated)."""
    licences: dict[str, str] = {}
    exceptions: dict[str, str] = {}
    for symbol in _licensing().known_symbols.values():
        if symbol.is_deprecated:
            continue
        (exceptions if symbol.is_exception else licences)[symbol.key.lower()] = symbol.key
    return licences, exceptions


def _sanitise(name: str) -> str:
    """An SPDX idstring (``[A-Za-z0-9.-]+``, SPDX 2.3 annex D) from any name; ``+`` kept as ``plus``."""
    text = re.sub(r"[^A-Za-z0-9.]+", "-", name.replace("+", "plus")).strip("-")
    return text or "unnamed"


def license_ref(name: str) -> str:
    """``LicenseRef-<sanitised name>``. license-expression treats some ``LicenseRef-`` ids as aliases of
    list licences (``LicenseRef-MIT-Bootstrap`` parses as ``MIT``, and so would spdx-tools' writer):
    such an id gets a ``-text`` suffix so that it stays itself."""
    ref = f"LicenseRef-{_sanitise(name)}"
    if str(_licensing().parse(ref)) != ref:
        ref += "-text"
    return ref


@lru_cache(maxsize=8192)  # a pure function of the text; an image repeats the same few hundred
def is_valid_expression(expression: str) -> bool:
    """A syntactically valid SPDX expression whose licences and exceptions are on the SPDX list (in
    their canonical spelling, not deprecated) or are ``LicenseRef-`` ids."""
    licences, exceptions = _spdx_ids()
    known = set(licences.values()) | set(exceptions.values())
    for token in _SYMBOL.findall(expression):
        if token.upper() in ("AND", "OR", "WITH") or token in known:
            continue
        if _REF.match(token) and str(_licensing().parse(token)) == token:
            continue
        return False
    try:
        info = _licensing().validate(expression, strict=True)
    except ExpressionError:
        return False
    # The validator does not know LicenseRef-s: every other complaint disqualifies the expression.
    return all(symbol.startswith("LicenseRef-") for symbol in info.invalid_symbols) and not [
        error for error in info.errors if not error.startswith("Unknown license key(s): LicenseRef-")
    ]


def is_spdx_id(expression: str) -> bool:
    """One licence id from the SPDX list, canonically spelt (``MIT``, not ``mit`` nor ``MIT OR X``)."""
    licences, _ = _spdx_ids()
    return licences.get(expression.lower()) == expression


def _exception_id(keyword: str, licence: str) -> str | None:
    """``Font`` with GPL-2.0 -> ``Font-exception-2.0``; ``Texinfo`` -> ``Texinfo-exception``."""
    _, exceptions = _spdx_ids()
    major = re.search(r"-(\d)\.\d", licence)
    candidates = [f"{keyword}-exception"]
    if major:
        candidates.append(f"{keyword}-exception-{major.group(1)}.0")
    for candidate in candidates:
        found = exceptions.get(_sanitise(candidate).lower())
        if found:
            return found
    return None


def _term(name: str) -> str | None:
    """One DEP-5 licence name (maybe ``with X exception``) -> an SPDX expression, or None if unknown."""
    name = name.strip()
    if match := _EXCEPTION.match(name):
        base = _term(match.group(1))
        if base is None or " " in base or base.startswith("LicenseRef-"):
            return None
        exception = _exception_id(match.group(2), base)
        return f"{base} WITH {exception}" if exception else None
    licences, _ = _spdx_ids()
    if mapped := _DEBIAN_NAMES.get(name.lower()):
        return mapped
    if match := _GNU_FAMILY.match(name):
        family, version, later = match.group(1).upper(), match.group(2), match.group(3)
        if "." not in version:
            version += ".0"
        stem = f"GFDL-{version}-no-invariants" if family == "GFDL-NIV" else f"{family}-{version}"
        return licences.get(f"{stem}-{'or-later' if later else 'only'}".lower())
    return licences.get(name.lower())


def _split(synopsis: str) -> list[list[list[str]]]:
    """DEP-5 "License specification": ``A or B and C, and D`` -> [[[A], [B, C]], [[D]]]
    (comma-``and`` groups of ``or`` alternatives of ``and`` terms)."""
    groups = re.split(r",\s*and\s+", synopsis, flags=re.IGNORECASE)
    return [
        [
            re.split(r"\s+and\s+", alt, flags=re.IGNORECASE)
            for alt in re.split(r",?\s+or\s+", group, flags=re.IGNORECASE)
        ]
        for group in groups
    ]


def _join(parts: list[str], operator: str) -> str:
    if len(parts) == 1:
        return parts[0]
    return f" {operator} ".join(f"({part})" if " AND " in part or " OR " in part else part for part in parts)


def _dep5_expression(synopsis: str, texts: dict[str, str], inline: str) -> License:
    """One ``License`` field of a ``Files`` paragraph -> a License (see the module docstring)."""
    unknown: dict[str, str] = {}  # LicenseRef id -> the Debian name it stands for

    def convert(name: str) -> str:
        spdx = _term(name)
        if spdx is None:
            spdx = license_ref(name.strip())
            unknown[spdx] = name.strip()
        elif spdx.startswith("LicenseRef-"):
            unknown[spdx] = name.strip()
        return spdx

    groups = [
        _join([_join([convert(term) for term in alt], "AND") for alt in group], "OR")
        for group in _split(synopsis)
    ]
    expression = _join(groups, "AND")

    def text_of(name: str) -> str:
        return texts.get(name.lower(), "") or (inline if name.lower() == synopsis.lower() else "")

    if len(unknown) > 1 or not is_valid_expression(expression):
        # Several unknown licences (or an expression we could not make valid): one LicenseRef for all.
        names = sorted(set(unknown.values()))
        parts = [f"{name}:\n{text_of(name)}" for name in names if text_of(name)]
        text = inline or "\n\n".join(parts)
        return License(expression=license_ref(synopsis), text=text or None, name=synopsis)
    if unknown:
        (name,) = unknown.values()
        return License(expression=expression, text=text_of(name) or inline or None, name=name)
    return License(expression=expression)


def _free_text(text: str, package: str | None) -> list[License]:
    """A pre-DEP-5 copyright file: its text kept whole, plus the GNU pointers it states unambiguously."""
    found: list[License] = []
    flat = " ".join(text.split())  # whitespace runs as one space (str.split is ~10x re.sub here)
    start = 0
    for match in _FREE_TEXT_POINTER.finditer(flat):
        family, version = match.group(1), match.group(2)
        window = flat[start : match.start()]
        start = match.end()
        # Only "version N[.0] of the License, or (at your option) any later version", close together.
        grant = rf"version {re.escape(version)}(?:\.0)?\b.{{0,80}}?any later version"
        if re.search(grant, window, re.IGNORECASE):
            spdx_version = version if "." in version else f"{version}.0"
            found.append(License(expression=f"{family}-{spdx_version}-or-later"))
    ref = f"LicenseRef-{_sanitise(package or 'copyright')}-free-text"
    found.append(License(expression=ref, text=text.strip(), name=f"{package or 'copyright'} (free text)"))
    return sorted(
        {licence.expression: licence for licence in found}.values(), key=lambda item: item.expression
    )


def parse_copyright(text: str, *, package: str | None = None) -> list[License]:
    """The licences a Debian ``copyright`` file declares, de-duplicated and sorted by expression.

    ``package`` names the free-text ``LicenseRef-`` of a non-DEP-5 file (``LicenseRef-<package>-
    free-text``; ``LicenseRef-copyright-free-text`` without it)."""
    # python-debian's Copyright class parses with its round-trip-preserving deb822 parser; the plain
    # deb822 parser reads the same paragraphs much faster (docs/benchmarks.md), and License.from_str splits each License field as DEP-5 section 6.5 says. Imported
    # here: a scan whose files are all in the cache (copyright_licenses) needs neither.
    from debian.deb822 import Deb822

    from debian import copyright as debcopyright

    paragraphs = list(Deb822.iter_paragraphs(text.splitlines(keepends=True)))
    header = paragraphs[0] if paragraphs else None
    if header is None or not _DEP5_FORMAT.search(header.get("Format", "")):
        return _free_text(text, package) if text.strip() else []
    body = paragraphs[1:]
    # Standalone License paragraphs: their text, by (case-insensitive) short name (DEP-5 section 5).
    texts: dict[str, str] = {}
    for paragraph in body:
        if "Files" not in paragraph and "License" in paragraph:
            licence = debcopyright.License.from_str(paragraph["License"])
            if licence is not None and licence.synopsis:
                texts.setdefault(licence.synopsis.strip().lower(), licence.text.strip())
    found: dict[str, License] = {}
    for paragraph in body:
        if "Files" not in paragraph or "License" not in paragraph:
            continue
        licence = debcopyright.License.from_str(paragraph["License"])
        if licence is None or not (licence.synopsis.strip() or licence.text.strip()):
            continue
        synopsis = licence.synopsis.strip() or "unnamed"
        result = _dep5_expression(synopsis, texts, licence.text.strip())
        previous = found.get(result.expression)
        if previous is None or (previous.text is None and result.text is not None):
            found[result.expression] = result
    return [found[key] for key in sorted(found)]


def copyright_licenses(text: str, *, package: str | None, cache_dir: Path | None) -> list[License]:
    """:func:`parse_copyright`, kept under ``cache_dir`` (when given) by the SHA256 of the file, the
    package name and everything the result depends on (:func:`_parser_identity`): the same copyright
    files come back in every build of the same packages, and parsing them was about 30 ms of a
    build-time SBOM's 210 (docs/benchmarks.md). A kept result that does not read back whole is
    parsed again and replaced."""
    if cache_dir is None:
        return parse_copyright(text, package=package)
    key = hashlib.sha256("\0".join([_parser_identity(), package or "", text]).encode()).hexdigest()
    path = cache_dir / "licenses" / key[:2] / f"{key}.json"
    try:
        kept = _read_kept(path.read_bytes(), key)
    except OSError:
        kept = None
    if kept is not None:
        return kept
    found = parse_copyright(text, package=package)
    body = [dataclasses.asdict(licence) for licence in found]
    record = {"licenses": body, "check": _check(key, body)}
    try:
        from bastion.oci import write_cache_file

        write_cache_file(path, json.dumps(record, sort_keys=True).encode())
    except OSError:
        pass  # a cache: a home that cannot be written only costs the parsing
    return found


def _check(key: str, body: object) -> str:
    return hashlib.sha256(f"{key}\0{json.dumps(body, sort_keys=True)}".encode()).hexdigest()


def _read_kept(raw: bytes, key: str) -> list[License] | None:
    try:
        record = json.loads(raw)
        body = record["licenses"]
        if record["check"] != _check(key, body):
            return None
        licences = [License(**item) for item in body]
    except (ValueError, TypeError, KeyError):
        return None
    fields_ok = all(
        isinstance(item.expression, str)
        and all(value is None or isinstance(value, str) for value in (item.text, item.name))
        for item in licences
    )
    return licences if fields_ok else None


@cache
def _parser_identity() -> str:
    """What a parsed file's licences depend on besides its text: this module's code, python-debian
    (paragraphs, License fields) and the SPDX licence list of license-expression and spdx-tools."""
    import sys
    import unicodedata
    from importlib.metadata import PackageNotFoundError, version

    from bastion import __version__

    # re and str (case folding, whitespace) follow the interpreter's Unicode tables.
    parts = [__version__, sys.version.split()[0], unicodedata.unidata_version]
    with contextlib.suppress(OSError):  # no readable source: the version alone
        parts.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    for distribution in ("python-debian", "license-expression", "spdx-tools"):
        try:
            parts.append(f"{distribution}={version(distribution)}")
        except PackageNotFoundError:
            parts.append(f"{distribution}=?")
    return "\n".join(parts)


def declared_expression(licenses: Iterable[License]) -> str | None:
    """The AND of every distinct expression (sorted, compound ones parenthesised); None if empty."""
    expressions = sorted({checked_license(licence).expression for licence in licenses})
    return _join(expressions, "AND") if expressions else None


def checked_license(licence: License) -> License:
    """``licence`` if its expression is valid SPDX, else a ``LicenseRef-`` keeping the original as text
    (a cataloger may hand over a free-form licence string; writers never emit an invalid expression)."""
    if is_valid_expression(licence.expression):
        return licence
    text = licence.text or licence.expression
    return License(
        expression=license_ref(licence.expression), text=text, name=licence.name or licence.expression
    )


@dataclass(frozen=True)
class ExtractedLicense:
    """A ``LicenseRef-`` used in an SBOM, with the text to publish (SPDX ``hasExtractedLicensingInfos``)."""

    license_id: str
    name: str
    text: str


def extracted_licenses(packages: Iterable[Package]) -> list[ExtractedLicense]:
    """Every ``LicenseRef-`` the packages use, sorted. One id may carry different texts in different
    packages (``LicenseRef-public-domain`` in tzdata and sqlite3): the texts are then concatenated,
    each under the names of the packages it came from, so that one id still means one text."""
    texts: dict[str, dict[str, set[str]]] = {}  # id -> text -> package names
    names: dict[str, str] = {}
    for package in packages:
        for licence in map(checked_license, package.licenses):
            for ref in sorted(set(re.findall(r"LicenseRef-[A-Za-z0-9.-]+", licence.expression))):
                text = licence.text or ""
                texts.setdefault(ref, {}).setdefault(text, set()).add(package.name)
                if licence.name:
                    names.setdefault(ref, licence.name)
    result: list[ExtractedLicense] = []
    for ref in sorted(texts):
        by_text = {text: owners for text, owners in texts[ref].items() if text}
        if not by_text:
            body = f"No licence text was found for {ref}; see the packages' copyright notices."
        elif len(by_text) == 1:
            body = next(iter(by_text))
        else:
            body = "\n\n".join(f"[{', '.join(sorted(by_text[text]))}]\n{text}" for text in sorted(by_text))
        result.append(ExtractedLicense(ref, names.get(ref, ref.removeprefix("LicenseRef-")), body))
    return result
