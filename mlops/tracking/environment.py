"""Seed every RNG and describe the environment a run executed in (`environment.json`)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops.tracking.names import ENVIRONMENT_ARTIFACT

_PACKAGES = ("torch", "transformers", "peft", "mlflow", "optuna", "datasets", "accelerate", "scikit-learn", "numpy")


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch (CPU and CUDA) through transformers' own helper."""
    from transformers import set_seed

    set_seed(seed)


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _pip_freeze() -> list[str]:
    dists = {(d.metadata["Name"] or "?"): d.version for d in importlib.metadata.distributions()}
    return sorted(f"{name}=={version}" for name, version in dists.items())


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_environment() -> dict[str, Any]:
    """Python, accelerator, library versions, git commit + dirty flag and the full pip freeze."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu_threads": torch.get_num_threads(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "git": _git_state(),
        "pip_freeze": _pip_freeze(),
    }


_CACHE: dict[str, Any] = {}


def log_environment() -> dict[str, Any]:
    """Log `environment.json` to the active MLflow run (computed once per process)."""
    import mlflow

    if not _CACHE:
        _CACHE.update(describe_environment())
    mlflow.log_dict(_CACHE, ENVIRONMENT_ARTIFACT)
    return _CACHE
