"""The cost metrics, each named once with its direction: what every task logs, what a generating task adds, and
what gates and search objectives find in the catalogues."""

from __future__ import annotations

import math

from mlops.registry import METRICS as POLICY_METRICS
from mlops.tasks import GATE_METRICS, LOGGED_METRICS, METRICS, SEARCH_METRICS, spec_for

COMMON = {
    "infer_latency_ms_p50",
    "infer_latency_ms_p95",
    "infer_examples_per_second",
    "model_params_active",
    "adapter_bytes",
    "serving_bytes",
    "infer_peak_memory_gib",
    "infer_cost_seconds",
}
GENERATION = {"generated_tokens_mean", "compression_ratio", "infer_tokens_per_second"}


def test_every_task_logs_the_cost_and_a_generating_task_its_tokens_too() -> None:
    assert {m.name for m in spec_for("classification").cost} == COMMON
    for task in ("summarization", "instruction"):
        assert {m.name for m in spec_for(task).cost} == COMMON | GENERATION
        assert set(LOGGED_METRICS[task]) >= COMMON | GENERATION
    assert not GENERATION & set(LOGGED_METRICS["classification"])
    assert not (COMMON | GENERATION) & {m for names in SEARCH_METRICS.values() for m in names}  # not validation metrics


def test_cost_metrics_carry_their_direction_and_an_open_range() -> None:
    maximised = {"infer_examples_per_second", "infer_tokens_per_second"}
    for name in COMMON | GENERATION:
        spec = METRICS[name]
        assert spec.direction == ("maximize" if name in maximised else "minimize")
        assert (spec.low, spec.high) == (0.0, math.inf)
    assert METRICS["eval_f1"].direction == "maximize" and METRICS["eval_loss"].direction == "minimize"


def test_gates_may_name_every_cost_metric_but_the_measurements_own_time() -> None:
    assert (COMMON | GENERATION) - {"infer_cost_seconds"} <= set(GATE_METRICS)
    assert "infer_cost_seconds" not in GATE_METRICS
    assert POLICY_METRICS["infer_latency_ms_p95"] is GATE_METRICS["infer_latency_ms_p95"]
