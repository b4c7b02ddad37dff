"""Promotion through the model registry: policies, gate decisions (thresholds, champion vs challenger), alias
moves under a cross-process lock with an audit trail, and lineage tags."""

from mlops.promotion._aliases import per_example_scores, promote_if_gates_pass, record_gate_report, register_version, version_metrics
from mlops.promotion._audit import AliasChanged, alias_holder, history, move_alias, registered_model, rollback
from mlops.promotion._compare import (
    PER_EXAMPLE_ARTIFACT,
    BootstrapResult,
    PerExampleScores,
    SplitMismatch,
    classification_per_example,
    paired_bootstrap,
    split_digest,
    summarization_per_example,
)
from mlops.promotion._gates import Champion, GateOutcome, GateReport, decide, gate_tags
from mlops.promotion._lineage import RESOLVED_CONFIG_ARTIFACT, lineage_tags
from mlops.promotion._policy import METRICS, AliasPolicy, Compare, Gate, MetricSpec, PromotionPolicy, load_policy, resolve_policy_path

__all__ = [
    "METRICS",
    "PER_EXAMPLE_ARTIFACT",
    "RESOLVED_CONFIG_ARTIFACT",
    "AliasChanged",
    "AliasPolicy",
    "BootstrapResult",
    "Champion",
    "Compare",
    "Gate",
    "GateOutcome",
    "GateReport",
    "MetricSpec",
    "PerExampleScores",
    "PromotionPolicy",
    "SplitMismatch",
    "alias_holder",
    "classification_per_example",
    "decide",
    "gate_tags",
    "history",
    "lineage_tags",
    "load_policy",
    "move_alias",
    "paired_bootstrap",
    "per_example_scores",
    "promote_if_gates_pass",
    "record_gate_report",
    "register_version",
    "registered_model",
    "resolve_policy_path",
    "rollback",
    "split_digest",
    "summarization_per_example",
    "version_metrics",
]
