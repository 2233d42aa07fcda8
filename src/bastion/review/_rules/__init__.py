"""The guardrail's rules, one module per family; :data:`RULES` lists every rule with its version."""

from __future__ import annotations

from bastion.review._model import Rule
from bastion.review._rules import _checks, _contributors, _errors, _flow, _integrity, _resources, _supply

RULES: tuple[Rule, ...] = (
    *_errors.RULES, *_flow.RULES, *_checks.RULES, *_resources.RULES, *_integrity.RULES, *_supply.RULES,
    *_contributors.RULES,
)  # fmt: skip

__all__ = ["RULES", "_checks", "_contributors", "_errors", "_flow", "_integrity", "_resources", "_supply"]
