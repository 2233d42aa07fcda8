"""The package structure docs/architecture.md describes, checked against the code.

Every module of ``src/bastion`` is parsed (imports inside functions and under ``TYPE_CHECKING``
count: they are dependencies too). A module's package is ``bastion.<first component>``; the modules
at the top (``errors``, ``config``, ``documents``, the internal ``_lazy``, ``_forked``,
``_progress``, ``__main__``) are packages of their own, and ``bastion`` is the top ``__init__``
(``__version__``). The checks:

* no module imports another package's private module or name (``bastion.X._y`` outside ``bastion.X``);
* the package graph has no cycle;
* its arrows are exactly the ones the "Import graph" section of docs/architecture.md lists;
* importing the library changes no interpreter state (the cycle collector, ``sys.modules``): that
  tuning belongs to the command's entry point.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src" / "bastion"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
ROOT = "bastion"  # the node of the top __init__
ANY = "*"  # the documented "may import any package"


@dataclass(frozen=True)
class Use:
    """One reference from a module to a module or name under ``bastion``."""

    module: str  # the importing module, dotted
    line: int
    target: str  # dotted: bastion.X[.Y...]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(dotted: str) -> str:
    parts = dotted.split(".")
    if len(parts) == 1 or not ((SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").is_file()):
        return ROOT  # the top __init__ or a name of it (``bastion.__version__``)
    return parts[1]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _uses(path: Path, module: str | None = None) -> list[Use]:
    """What ``path`` uses under ``bastion``; ``module``: its dotted name, when not under src."""
    module = module or _module_name(path)
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    uses: list[Use] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            uses += [Use(module, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source != ROOT:  # ``from bastion import x`` depends on x, not on the top __init__
                uses.append(Use(module, node.lineno, source))
            uses += [Use(module, node.lineno, f"{source}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node)
            if dotted is not None and dotted.startswith(f"{ROOT}."):
                uses.append(Use(module, node.lineno, dotted))
    return [use for use in uses if use.target == ROOT or use.target.startswith(f"{ROOT}.")]


def _all_uses() -> list[Use]:
    return [use for path in sorted(SRC.rglob("*.py")) for use in _uses(path)]


def _private_reach(use: Use) -> bool:
    """``bastion.X._y`` (a private module or name of package X) used outside X."""
    parts = use.target.split(".")
    own = _package_of(use.module)
    target = _package_of(use.target)
    return target != own and any(p.startswith("_") and not p.startswith("__") for p in parts[2:])


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for use in _all_uses():
        source, target = _package_of(use.module), _package_of(use.target)
        if source != target:
            graph.setdefault(source, set()).add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def _documented() -> dict[str, set[str]]:
    """The arrows of the "Import graph" section: one ``package -> a, b, c`` line each."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = re.search(r"^## Import graph\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section is not None, "docs/architecture.md has no '## Import graph' section"
    block = re.search(r"^```\n(.*?)^```", section.group(1), re.M | re.S)
    assert block is not None, "the Import graph section has no ``` block of arrows"
    arrows: dict[str, set[str]] = {}
    for line in block.group(1).splitlines():
        source, sep, targets = line.partition(" -> ")
        assert sep, f"not an arrow line: {line!r}"
        arrows[source.strip()] = {t.strip() for t in targets.split(",")}
    return arrows


def test_no_module_reaches_into_another_packages_private_modules() -> None:
    reaches = sorted(
        f"{use.module}:{use.line} uses {use.target}" for use in _all_uses() if _private_reach(use)
    )
    assert reaches == [], "import the package's public name instead:\n" + "\n".join(reaches)


def test_the_package_graph_has_no_cycle() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_documented_import_graph_is_the_code_s() -> None:
    graph = _graph()
    documented = _documented()
    allowed_anything = {source for source, targets in documented.items() if targets == {ANY}}
    expected = {source: targets for source, targets in documented.items() if source not in allowed_anything}
    actual = {source: targets for source, targets in graph.items() if source not in allowed_anything}
    lines = "\n".join(f"{s} -> {', '.join(sorted(t))}" for s, t in sorted(graph.items()))
    assert actual == expected, f"docs/architecture.md's Import graph should read:\n{lines}"
    for source in allowed_anything:
        assert source in graph, f"{source} -> * is documented, but {source} imports no package"


def test_the_checks_see_private_reaches_cycles_and_lazy_imports(tmp_path: Path) -> None:
    """The helpers above would pass on anything if they saw nothing: they must see these."""
    module = tmp_path / "probe.py"
    module.write_text(
        "import bastion.oci._model\n"
        "def f():\n"
        "    from bastion.vuln._scan import load_sbom\n"
        "    return bastion.attest._check.select, load_sbom\n",
        encoding="utf-8",
    )
    uses = _uses(module, "bastion.vex._probe")
    assert {use.target for use in uses if _private_reach(use)} >= {
        "bastion.oci._model",
        "bastion.vuln._scan",
        "bastion.attest._check.select",
    }
    assert _cycle({"vex": {"vuln"}, "vuln": {"sbom", "vex"}}) == ["vex", "vuln", "vex"]
    assert _cycle({"vex": {"vuln"}, "vuln": {"sbom"}}) is None


# Calls that change the whole interpreter, for every library user: the command's entry point decides.
_PROCESS_TUNING = {
    "gc.disable",
    "gc.enable",
    "gc.freeze",
    "gc.set_threshold",
    "signal.signal",
    "sys.modules.setdefault",
    "sys.setrecursionlimit",
    "sys.setswitchinterval",
}
_ENTRY_POINT = "bastion.cli._main"


def test_only_the_command_entry_point_tunes_the_process() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and _dotted(node.func) in _PROCESS_TUNING:
                found.append(f"{module}:{node.lineno} calls {_dotted(node.func)}")
            elif (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Store | ast.Del)
                and _dotted(node.value) == "sys.modules"
            ):
                found.append(f"{module}:{node.lineno} changes sys.modules")
    assert found, "the entry point's own tuning must be seen, or this check sees nothing"
    elsewhere = [line for line in found if not line.startswith(f"{_ENTRY_POINT}:")]
    assert elsewhere == [], "move process tuning to bastion/cli/_main.py:\n" + "\n".join(elsewhere)


def test_importing_the_library_changes_no_interpreter_state() -> None:
    """Every module imported in a fresh interpreter: the cycle collector stays on and no module is
    blocked in ``sys.modules`` (the command's entry point, cli/_main.py, tunes the process)."""
    probe = (
        "import gc, importlib, json, pkgutil, sys\n"
        "before = {k for k, v in sys.modules.items() if v is None}\n"
        "import bastion\n"
        "names = [m.name for m in pkgutil.walk_packages(bastion.__path__, 'bastion.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "blocked = sorted({k for k, v in sys.modules.items() if v is None} - before)\n"
        "print(json.dumps({'gc': gc.isenabled(), 'blocked': blocked, 'count': len(names),\n"
        "                  'rfc3987': sys.modules.get('rfc3987_syntax', 0) is None}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["count"] > 50
    assert found["gc"] is True
    assert found["rfc3987"] is False
    assert found["blocked"] == []
