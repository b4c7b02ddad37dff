"""The cost of serving a trained model: each cost metric's name, range and direction, spelt once.

Every run that trains a model measures them after training through the served model's own predict path
(`mlops.train.cost`) and logs them without a split prefix; promotion policies gate on them (`max:`) and a search may
name them as objectives. What a task logs is `TaskSpec.cost`: these, and for a task that generates the
generation ones too.
"""

from __future__ import annotations

import math

from mlops.tasks._spec import MetricSpec

INFER_LATENCY_P50 = "infer_latency_ms_p50"  # per example at batch 1, after a warm-up
INFER_LATENCY_P95 = "infer_latency_ms_p95"
INFER_EXAMPLES_PER_SECOND = "infer_examples_per_second"  # at the serving batch size
MODEL_PARAMS_ACTIVE = "model_params_active"  # parameters of the served model (after pruning)
ADAPTER_BYTES = "adapter_bytes"  # the adapter's weight files
SERVING_BYTES = "serving_bytes"  # the weights the served model holds: merged or not, quantised or not
INFER_PEAK_MEMORY = "infer_peak_memory_gib"  # the peak while loading and serving the sample
GENERATED_TOKENS_MEAN = "generated_tokens_mean"
COMPRESSION_RATIO = "compression_ratio"  # generated tokens / input document tokens
INFER_TOKENS_PER_SECOND = "infer_tokens_per_second"  # generated tokens per second at the serving batch size
INFER_COST_SECONDS = "infer_cost_seconds"  # the measurement's own wall time: what measuring cost the run


def _cost(name: str, *, higher_is_better: bool = False, gate: bool = True) -> MetricSpec:
    return MetricSpec(name, 0.0, math.inf, higher_is_better=higher_is_better, gate=gate)


COST_METRICS = (
    _cost(INFER_LATENCY_P50),
    _cost(INFER_LATENCY_P95),
    _cost(INFER_EXAMPLES_PER_SECOND, higher_is_better=True),
    _cost(MODEL_PARAMS_ACTIVE),
    _cost(ADAPTER_BYTES),
    _cost(SERVING_BYTES),
    _cost(INFER_PEAK_MEMORY),
    _cost(INFER_COST_SECONDS, gate=False),
)
GENERATION_COST_METRICS = (
    _cost(GENERATED_TOKENS_MEAN),
    _cost(COMPRESSION_RATIO),
    _cost(INFER_TOKENS_PER_SECOND, higher_is_better=True),
)
# What the machine measured: they differ between two measurements of the same model (a reproduction compares none).
MEASURED_COST_METRICS = (
    INFER_LATENCY_P50,
    INFER_LATENCY_P95,
    INFER_EXAMPLES_PER_SECOND,
    INFER_PEAK_MEMORY,
    INFER_TOKENS_PER_SECOND,
    INFER_COST_SECONDS,
)
