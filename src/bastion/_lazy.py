"""Package attributes loaded on first use (PEP 562), for names whose modules import heavy libraries
(httpx, SQLAlchemy, cyclonedx-python-lib, the signing stack) that many commands never need."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``names`` is imported from the
    submodule it maps to (``"_db"``), or from ``"_module:other_name"`` when it is exported under
    another name."""

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        return getattr(importlib.import_module(f"{package}.{module}"), attribute or name)

    return __getattr__
