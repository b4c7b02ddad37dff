"""The served model as `mlflow models serve` loads it, outside MLflow: the task's pyfunc class from
`mlops.serving.pyfunc`, its `load_context` given the adapter directory as the logged model's `adapter` artifact.
What its cost is measured on (`mlops.train.cost`), and what it holds: active parameters and bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.models import logical_numel, packed_weights, read_card
from mlops.tasks import ADAPTER_BYTES, MODEL_PARAMS_ACTIVE, SERVING_BYTES, resolve, spec_for

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def load_servable(adapter_dir: Path) -> Any:
    """The pyfunc model a logged model of this adapter serves, loaded through the same `load_context` (and so with
    the same base, precision, structure and adapter); call `predict(None, frame)` on it."""
    from mlflow.pyfunc.model import PythonModelContext

    model = resolve(f"mlops.serving.pyfunc:{spec_for(read_card(adapter_dir)['task']).serving.model_class}")()
    model.load_context(PythonModelContext(artifacts={"adapter": str(adapter_dir)}, model_config={}))
    return model


def served_size(servable: Any) -> dict[str, float]:
    """The served model's parameters (as pruned, with its adapter: what runs on each input) and the bytes of the
    weights it holds, each tensor counted once (tied weights share one)."""
    model = servable.model
    packed = packed_weights(model)  # dynamically quantised linear layers (serving.precision: dynamic_int8)
    seen: set[int] = set()
    held = 0
    for tensor in [*model.parameters(), *model.buffers(), *packed]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            held += tensor.numel() * tensor.element_size()
    params = sum(logical_numel(p) for p in [*model.parameters(), *packed])  # `parameters()` yields a tied weight once
    return {MODEL_PARAMS_ACTIVE: float(params), SERVING_BYTES: float(held)}


def adapter_bytes(adapter_dir: Path) -> dict[str, float]:
    """The bytes of the adapter's weight files (tokenizer and card left out)."""
    size = sum(p.stat().st_size for p in adapter_dir.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    return {ADAPTER_BYTES: float(size)}
