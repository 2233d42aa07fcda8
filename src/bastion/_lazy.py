"""Package attributes loaded on first use (PEP 562), for names whose modules import heavy libraries
(httpx, SQLAlchemy, cyclonedx-python-lib, lxml, the signing stack) that many commands never need.

A package lists each such name once, as an import under ``if TYPE_CHECKING:`` (what type checkers
see) and in its ``__all__``; :func:`lazy_attributes` reads that block from the package's own source
to know where each name comes from, as Scientific Python's SPEC 1 lazy loader reads a stub file.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: a name imported under the package's top-level
    ``if TYPE_CHECKING:`` from one of its submodules is imported from there on first use."""
    origins: dict[str, tuple[str, str]] = {}

    def __getattr__(name: str) -> Any:
        if not origins:
            origins.update(_type_checking_imports(package))
        where = origins.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = where
        value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)  # the next access does not come here
        return value

    return __getattr__


def _type_checking_imports(package: str) -> dict[str, tuple[str, str]]:
    """Each name the ``if TYPE_CHECKING:`` blocks of ``package``'s ``__init__`` import from its own
    submodules, with the submodule and the name there."""
    module = sys.modules[package]
    get_source = getattr(module.__loader__, "get_source", None)
    source = get_source(package) if callable(get_source) else None
    if not isinstance(source, str):
        raise ImportError(f"cannot read the source of {package} to find its lazy attributes", name=package)
    origins: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        if not (
            isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        ):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and (statement.module or "").startswith(f"{package}."):
                for alias in statement.names:
                    origins[alias.asname or alias.name] = (f"{statement.module}", alias.name)
    return origins
