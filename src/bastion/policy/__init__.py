"""Verification policies for ``bastion verify --policy``: required attestations, allowed keys, and
conditions on signed predicates."""

from bastion.policy._policy import (
    Condition,
    ConditionResult,
    LoadedPolicy,
    Policy,
    evaluate_conditions,
    load_policy,
)

__all__ = ["Condition", "ConditionResult", "LoadedPolicy", "Policy", "evaluate_conditions", "load_policy"]
