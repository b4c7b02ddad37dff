"""Tasks as specs: everything that differs between fine-tuning tasks, declared once per task and registered here.
The bottom layer: it imports nothing of mlops but the errors, and nothing heavy. Adding a task: see `_spec.py`."""

from mlops.tasks import classification, instruction, summarization
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
    "GATE_METRICS",
    "LOGGED_METRICS",
    "METRICS",
    "SEARCH_METRICS",
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
