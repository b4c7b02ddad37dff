"""Tasks as specs: everything that differs between fine-tuning tasks, declared once per task and registered here.
The bottom layer: it imports nothing of mlops but the errors, and nothing heavy. Adding a task: see `_spec.py`."""

from mlops.tasks import classification, instruction, summarization
from mlops.tasks._cost import (
    ADAPTER_BYTES,
    COMPRESSION_RATIO,
    COST_METRICS,
    GENERATED_TOKENS_MEAN,
    GENERATION_COST_METRICS,
    INFER_COST_SECONDS,
    INFER_EXAMPLES_PER_SECOND,
    INFER_LATENCY_P50,
    INFER_LATENCY_P95,
    INFER_PEAK_MEMORY,
    INFER_TOKENS_PER_SECOND,
    MEASURED_COST_METRICS,
    MODEL_PARAMS_ACTIVE,
    SERVING_BYTES,
)
from mlops.tasks._registry import (
    GATE_METRICS,
    LOGGED_METRICS,
    METRICS,
    SEARCH_METRICS,
    register,
    resolve,
    spec_for,
    suggestion,
    task_names,
    unknown_task,
    unregister,
)
from mlops.tasks._spec import Column, MetricSpec, ServedInput, ServingSpec, TaskSpec, bounded, loss

register(classification.SPEC)
register(summarization.SPEC)
register(instruction.SPEC)

__all__ = [
    "ADAPTER_BYTES",
    "COMPRESSION_RATIO",
    "COST_METRICS",
    "GATE_METRICS",
    "GENERATED_TOKENS_MEAN",
    "GENERATION_COST_METRICS",
    "INFER_COST_SECONDS",
    "INFER_EXAMPLES_PER_SECOND",
    "INFER_LATENCY_P50",
    "INFER_LATENCY_P95",
    "INFER_PEAK_MEMORY",
    "INFER_TOKENS_PER_SECOND",
    "LOGGED_METRICS",
    "MEASURED_COST_METRICS",
    "METRICS",
    "MODEL_PARAMS_ACTIVE",
    "SEARCH_METRICS",
    "SERVING_BYTES",
    "Column",
    "MetricSpec",
    "ServedInput",
    "ServingSpec",
    "TaskSpec",
    "bounded",
    "loss",
    "register",
    "resolve",
    "spec_for",
    "suggestion",
    "task_names",
    "unknown_task",
    "unregister",
]
