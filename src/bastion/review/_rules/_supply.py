"""Supply chain: new dependencies in the manifests, and CI workflows that gain secrets or network steps."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import PurePosixPath

from bastion.review._model import Confidence, Hit, Rule, Severity

DEPENDENCY = Rule(
    "SC001", "supply-chain", Severity.MEDIUM, Confidence.HIGH,
    "A new dependency: code from a new publisher enters the build; who publishes it needs a look.",
)  # fmt: skip
CI = Rule(
    "SC002", "supply-chain", Severity.HIGH, Confidence.MEDIUM,
    "A CI workflow gained access to secrets, write permissions or a network step: a compromised step "
    "can publish releases or leak credentials.",
)  # fmt: skip
RULES = (DEPENDENCY, CI)

_CI = re.compile(r"(^|/)(\.github/workflows/[^/]+\.ya?ml|\.gitlab-ci\.ya?ml|\.circleci/config\.ya?ml|"
                 r"\.travis\.ya?ml|azure-pipelines\.ya?ml|Jenkinsfile)$")  # fmt: skip
_CI_RISK = [
    (re.compile(r"\bsecrets\.|\$\{\{\s*secrets"), "reads a secret"),
    (re.compile(r"\b(curl|wget|nc|ncat)\b"), "network step"),
    (re.compile(r"pull_request_target"), "runs untrusted pull requests with secrets"),
    (re.compile(r"permissions:\s*write-all|contents:\s*write|id-token:\s*write"), "write permission"),
]
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def is_ci_file(path: str) -> bool:
    return bool(_CI.search(path))


def check_ci(path: str, added: list[tuple[int, str]]) -> Iterator[Hit]:
    if not is_ci_file(path):
        return
    for line, text in added:
        stripped = text.strip()
        reasons = [why for pattern, why in _CI_RISK if pattern.search(stripped)]
        if reasons and not stripped.startswith("#"):
            yield Hit(CI, path, line, "", stripped, ", ".join(reasons))


def dependencies(path: str, text: str) -> dict[str, int] | None:
    """Dependency name -> line of a manifest (None: not a manifest, or not one we can read)."""
    name = PurePosixPath(path).name
    if name == "go.mod":
        return _go_mod(text.splitlines())
    if re.fullmatch(r"requirements.*\.(txt|in)", name):
        return _requirements(text.splitlines())
    if name == "pyproject.toml":
        return _pyproject(text)
    if name == "package.json":
        return _package_json(text)
    if name in ("configure.ac", "configure.in", "CMakeLists.txt"):
        return _build_checks(text.splitlines())
    return None


def _go_mod(lines: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    block = False
    for i, line in enumerate(lines, 1):
        s = line.split("//", 1)[0].strip()
        if s.startswith("require ("):
            block = True
        elif block and s == ")":
            block = False
        elif (block and s) or s.startswith("require "):
            parts = s.removeprefix("require ").split()
            if parts:
                found[parts[0]] = i
    return found


def _requirements(lines: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, line in enumerate(lines, 1):
        m = _REQUIREMENT.match(line.split("#", 1)[0])
        if m and not line.lstrip().startswith("-"):
            found[m.group(1).lower().replace("_", "-")] = i
    return found


def _pyproject(text: str) -> dict[str, int] | None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    project = doc.get("project", {})
    specs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    lines = text.splitlines()
    found: dict[str, int] = {}
    for spec in specs:
        m = _REQUIREMENT.match(str(spec))
        if m:
            dep = m.group(1).lower().replace("_", "-")
            found[dep] = next((i for i, line in enumerate(lines, 1) if m.group(1) in line), 1)
    return found


def _package_json(text: str) -> dict[str, int] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    lines = text.splitlines()
    found: dict[str, int] = {}
    for section in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
        deps = doc.get(section) if isinstance(doc, dict) else None
        for dep in deps if isinstance(deps, dict) else {}:
            found[str(dep)] = next((i for i, line in enumerate(lines, 1) if f'"{dep}"' in line), 1)
    return found


_BUILD_CHECK = re.compile(r"(PKG_CHECK_MODULES\(\s*\[?\w+\]?\s*,\s*\[?|AC_CHECK_LIB\(\s*\[?|find_package\(\s*|"
                          r"pkg_check_modules\(\s*\w+\s+(?:REQUIRED\s+)?)([\w.+-]+)")  # fmt: skip


def _build_checks(lines: list[str]) -> dict[str, int]:
    """Libraries autoconf (PKG_CHECK_MODULES, AC_CHECK_LIB) and CMake (find_package) look for."""
    return {m.group(2): i for i, line in enumerate(lines, 1) for m in _BUILD_CHECK.finditer(line)}


def check_dependencies(path: str, old_text: str, new_text: str) -> Iterator[Hit]:
    new = dependencies(path, new_text)
    if new is None:
        return
    old = dependencies(path, old_text) or {}
    for dep, line in sorted(new.items()):
        if dep not in old:
            yield Hit(DEPENDENCY, path, line, "", dep, f"new dependency {dep}")
