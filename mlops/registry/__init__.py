"""The model registry: promotion policies (`policy`), gate decisions (`gates`: thresholds, champion vs challenger on
a paired bootstrap from `compare`, speed timed side by side from `speed`), promotion (`promotion`: register, decide,
move only on a pass), alias moves under a cross-process lock with an audit trail (`aliases`, `ledger`), a person's
approval where a policy requires one (`approval`), lineage tags, evaluation of a registered model, and export."""

from mlops.registry.aliases import ANY_HOLDER, AliasMove, alias_holder, history, move_alias, rollback
from mlops.registry.approval import approve, pending
from mlops.registry.compare import (
    BootstrapResult,
    bootstrap_interval,
    check_same_split,
    check_same_text_tokenizer,
    metric_on_weights,
    paired_bootstrap,
)
from mlops.registry.evaluation import run_evaluate
from mlops.registry.export import merge_adapter, run_export
from mlops.registry.gates import Champion, Evidence, GateOutcome, GateReport, decide, gate_tags
from mlops.registry.lineage import lineage_tags
from mlops.registry.policy import (
    METRICS,
    AliasPolicy,
    Compare,
    Gate,
    PromotionPolicy,
    load_policy,
    policy_for,
    resolve_policy_path,
)
from mlops.registry.promotion import (
    per_example_scores,
    promote_if_gates_pass,
    record_gate_report,
    register_version,
    run_promote,
    version_metrics,
)
from mlops.registry.speed import SideBySide, time_against_champion
from mlops.tasks import MetricSpec

__all__ = [
    "ANY_HOLDER",
    "METRICS",
    "AliasMove",
    "AliasPolicy",
    "BootstrapResult",
    "Champion",
    "Compare",
    "Evidence",
    "Gate",
    "GateOutcome",
    "GateReport",
    "MetricSpec",
    "PromotionPolicy",
    "SideBySide",
    "alias_holder",
    "approve",
    "bootstrap_interval",
    "check_same_split",
    "check_same_text_tokenizer",
    "decide",
    "gate_tags",
    "history",
    "lineage_tags",
    "load_policy",
    "merge_adapter",
    "metric_on_weights",
    "move_alias",
    "paired_bootstrap",
    "pending",
    "per_example_scores",
    "policy_for",
    "promote_if_gates_pass",
    "record_gate_report",
    "register_version",
    "resolve_policy_path",
    "rollback",
    "run_evaluate",
    "run_export",
    "run_promote",
    "time_against_champion",
    "version_metrics",
]
