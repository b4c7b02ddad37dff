"""mlops: tune and ship transformer models on MLflow (LoRA fine-tuning, Optuna sweeps, gated promotion).

Importing the package is cheap: torch, transformers, mlflow and optuna load only when a command needs them.
"""

__version__ = "0.1.0"
