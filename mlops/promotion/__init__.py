"""Promotion through the model registry: policies, gate decisions and alias moves."""

from mlops.promotion._aliases import alias_holder, promote_if_gates_pass, record_gate_report, register_version, version_metrics
from mlops.promotion._audit import history, move_alias, rollback
from mlops.promotion._gates import GateOutcome, GateReport, decide
from mlops.promotion._policy import AliasPolicy, Gate, PromotionPolicy, load_policy, resolve_policy_path

__all__ = [
    "AliasPolicy",
    "Gate",
    "GateOutcome",
    "GateReport",
    "PromotionPolicy",
    "alias_holder",
    "decide",
    "history",
    "load_policy",
    "move_alias",
    "promote_if_gates_pass",
    "record_gate_report",
    "register_version",
    "resolve_policy_path",
    "rollback",
    "version_metrics",
]
