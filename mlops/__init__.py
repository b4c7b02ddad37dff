"""mlops: tune and ship transformer models on MLflow (LoRA fine-tuning, Optuna sweeps, gated promotion).

Importing the package is cheap: torch, transformers, mlflow and optuna load only when a command needs them.
"""

from mlops import _legacy

__version__ = "0.1.0"

_legacy.install()  # models logged by earlier releases import module names that have since moved
