"""Build and release integrity: build scripts gaining execution primitives, hardening flags turned off,
new binary or high-entropy fixtures, and release tarballs that differ from their tag (the shape of the
xz-utils backdoor, CVE-2024-3094: a modified m4 file only in the tarball, decoding a test fixture with
`tr`/`head -c` pipelines)."""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import PurePosixPath

from bastion.review._model import Confidence, Hit, Rule, Severity

EXEC = Rule(
    "BI001", "integrity", Severity.HIGH, Confidence.HIGH,
    "A build script gained a way to run code it did not have (eval, a download, a pipe into a shell): "
    "the build can now do what the reviewed source does not show.",
)  # fmt: skip
DECODE = Rule(
    "BI002", "integrity", Severity.CRITICAL, Confidence.HIGH,
    "A build script gained a decoding pipeline (base64, xxd, uudecode, tr substitution, head -c/tail -c "
    "slicing): hidden content is being unpacked at build time, as in CVE-2024-3094.",
)  # fmt: skip
HARDENING = Rule(
    "BI003", "integrity", Severity.HIGH, Confidence.HIGH,
    "A hardening or sandbox protection is turned off (stack protector, non-executable stack, "
    "FORTIFY_SOURCE, RELRO, CET, seccomp or landlock): exploits the protection stopped now work.",
)  # fmt: skip
FIXTURE = Rule(
    "BI004", "integrity", Severity.HIGH, Confidence.MEDIUM,
    "A new binary or high-entropy test fixture: opaque bytes nobody reviews are where a payload hides "
    "(CVE-2024-3094's 'corrupt' .xz test files).",
)  # fmt: skip
BINARY = Rule(
    "BI005", "integrity", Severity.LOW, Confidence.MEDIUM,
    "A new binary file outside the tests: its content cannot be reviewed as a diff.",
)  # fmt: skip
NOT_IN_TAG = Rule(
    "BI006", "integrity", Severity.HIGH, Confidence.HIGH,
    "The release tarball carries a build or source file that the tagged tree does not: what is built is "
    "not what was reviewed.",
)  # fmt: skip
EXTRA_FILE = Rule(
    "BI007", "integrity", Severity.MEDIUM, Confidence.LOW,
    "The release tarball carries a file that the tagged tree does not.",
)  # fmt: skip
DIFFERS = Rule(
    "BI008", "integrity", Severity.MEDIUM, Confidence.HIGH,
    "A file of the release tarball differs from the same file of the tag.",
)  # fmt: skip
IGNORED = Rule(
    "BI009", "integrity", Severity.MEDIUM, Confidence.MEDIUM,
    "The release tarball carries a file the project's .gitignore excludes from the repository: it was "
    "added outside version control.",
)  # fmt: skip
GENERATED = Rule(
    "BI010", "integrity", Severity.INFO, Confidence.HIGH,
    "A file autotools generates is in the release tarball only (expected; listed for the record).",
)  # fmt: skip
RULES = (EXEC, DECODE, HARDENING, FIXTURE, BINARY, NOT_IN_TAG, EXTRA_FILE, DIFFERS, IGNORED, GENERATED)

_BUILD_NAMES = {"configure", "configure.ac", "configure.in", "Makefile", "CMakeLists.txt", "meson.build",
                "autogen.sh", "bootstrap", "build.sh", "rules", "GNUmakefile", "makefile", "setup.py"}  # fmt: skip
_BUILD_SUFFIXES = {".m4", ".ac", ".am", ".in", ".mk", ".cmake", ".sh", ".bash"}
#: What autoreconf/automake/libtool put in a release tarball (autoconf manual, "Distributing").
GENERATED_NAMES = frozenset({
    "configure", "Makefile.in", "aclocal.m4", "config.h.in", "compile", "depcomp", "install-sh", "missing",
    "ltmain.sh", "config.guess", "config.sub", "test-driver", "ar-lib", "INSTALL", "ylwrap", "mkinstalldirs",
    "libtool.m4", "ltoptions.m4", "ltsugar.m4", "ltversion.m4", "lt~obsolete.m4", ".tarball-version",
})  # fmt: skip

_EXEC = [
    (re.compile(r"(^|[\s;&|(`])eval\b"), "eval"),
    (re.compile(r"\b(curl|wget)\b"), "download"),
    (re.compile(r"\|\s*(ba|da|z)?sh\b"), "pipe into a shell"),
    (re.compile(r"\bsource\s+<\(|\$\(\s*cat\b[^)]*\|\s*sh"), "runs generated text"),
]
_DECODE = [
    (re.compile(r"\bbase64\s+(-d|--decode|-D)\b"), "base64 decoding"),
    (re.compile(r"\bxxd\s+-r\b"), "xxd -r"),
    (re.compile(r"\buudecode\b"), "uudecode"),
    (re.compile(r"\btr\s+(-[a-z]+\s+)?[\"']?\\?[\w\\-]+[\"']?\s+[\"']?\\?[\w\\-]+"), "tr substitution"),
    (re.compile(r"\b(head|tail)\s+-c\b"), "head/tail -c slicing"),
    (re.compile(r"\b(xz|lzma|gzip|unxz)\s+-[a-zA-Z]*d[a-zA-Z]*c?\b[^|]*\|"), "decompression into a pipeline"),
]
_HARDENING = [
    re.compile(r"-fno-stack-protector\b"),
    re.compile(r"(-z\s*,?\s*|-Wl,-z,)execstack\b"),
    re.compile(r"-U_FORTIFY_SOURCE\b|-D_FORTIFY_SOURCE=0\b"),
    re.compile(r"(-z\s*,?\s*|-Wl,-z,)norelro\b"),
    re.compile(r"-fcf-protection=none\b|-fno-pie\b|-no-pie\b"),
    re.compile(r"--disable-(seccomp|landlock|sandbox|hardening)\b", re.IGNORECASE),
    re.compile(r"\b(SECCOMP|LANDLOCK|SANDBOX)\w*\s*[:?]?=\s*(0|no|off|false)\b", re.IGNORECASE),
    re.compile(r"\b(seccomp|landlock|sandbox)\w*\s*=\s*(no|off|false|disabled?)\b", re.IGNORECASE),
]
_TEST_DIR = re.compile(r"(^|/)(tests?|testdata|fixtures?|t)/", re.IGNORECASE)


def is_build_file(path: str) -> bool:
    p = PurePosixPath(path)
    return p.name in _BUILD_NAMES or p.suffix in _BUILD_SUFFIXES or p.name.startswith("Makefile") \
        or (len(p.parts) > 1 and p.parts[0] in ("m4", "build-aux", "cmake"))  # fmt: skip


def check_lines(path: str, added: list[tuple[int, str]], shell: bool) -> Iterator[Hit]:
    """Rules over the lines a change adds to a text file."""
    build = shell or is_build_file(path)
    for line, text in added:
        stripped = text.strip()
        if not stripped or stripped.startswith(("#", "dnl ", "//")):
            continue
        for pattern in _HARDENING:
            if pattern.search(stripped):
                yield Hit(HARDENING, path, line, "", stripped, pattern.pattern)
                break
        if not build:
            continue
        decoding = [what for pattern, what in _DECODE if pattern.search(stripped)]
        if decoding:
            yield Hit(DECODE, path, line, "", stripped, ", ".join(decoding))
            continue
        running = [what for pattern, what in _EXEC if pattern.search(stripped)]
        if running:
            yield Hit(EXEC, path, line, "", stripped, ", ".join(running))


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte (8.0 for random or compressed data)."""
    if not data:
        return 0.0
    counts = Counter(data)
    total = len(data)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def is_binary(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def check_blob(path: str, data: bytes) -> Iterator[Hit]:
    """A new or changed file that is binary, or text too random to be written by hand."""
    bits = entropy(data)
    binary = is_binary(data)
    in_tests = bool(_TEST_DIR.search(path))
    if in_tests and (binary or (len(data) >= 1024 and bits >= 5.6)):
        yield Hit(FIXTURE, path, 1, "", f"{path} ({len(data)} bytes)", f"entropy {bits:.2f} bits/byte")
    elif binary:
        yield Hit(BINARY, path, 1, "", f"{path} ({len(data)} bytes)", f"entropy {bits:.2f} bits/byte")


def gitignore_patterns(text: str) -> list[str]:
    return [p.strip() for p in text.splitlines() if p.strip() and not p.lstrip().startswith(("#", "!"))]


def ignored(path: str, patterns: list[str]) -> bool:
    """gitignore(5) matching, the common subset: a pattern with a slash matches from the top, one without
    matches any component; a trailing slash matches directories."""
    parts = path.split("/")
    for pattern in patterns:
        anchored = "/" in pattern.rstrip("/")
        pat = pattern.strip("/")
        if pattern.endswith("/"):
            dirs = parts[:-1]
            if anchored and fnmatch.fnmatchcase("/".join(dirs), pat + "*"):
                return True
            if not anchored and any(fnmatch.fnmatchcase(d, pat) for d in dirs):
                return True
            continue
        if anchored and (fnmatch.fnmatchcase(path, pat) or any(
                fnmatch.fnmatchcase("/".join(parts[:i]), pat) for i in range(1, len(parts)))):  # fmt: skip
            return True
        if not anchored and any(fnmatch.fnmatchcase(p, pat) for p in parts):
            return True
    return False


def release_files(tag_paths: set[str], tarball: dict[str, str], tag_ids: dict[str, str],
                  patterns: list[str]) -> Iterator[Hit]:  # fmt: skip
    """Release-integrity rules: ``tarball`` maps each member to its blob id, ``tag_ids`` the tag's."""
    for path, oid in sorted(tarball.items()):
        name = PurePosixPath(path).name
        if path not in tag_paths:
            if name in GENERATED_NAMES:
                yield Hit(GENERATED, path, 1, "", path)
                continue
            rule = (
                NOT_IN_TAG if is_build_file(path) or path.endswith((".c", ".h", ".go", ".py")) else EXTRA_FILE
            )
            yield Hit(rule, path, 1, "", path)
            if ignored(path, patterns):
                yield Hit(IGNORED, path, 1, "", path)
        elif tag_ids.get(path) != oid:
            yield Hit(DIFFERS, path, 1, "", path)
