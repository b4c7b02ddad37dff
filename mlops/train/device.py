"""Where training runs: CUDA with its mixed precision where available, else CPU."""

from __future__ import annotations

from mlops.errors import ConfigError


def pick_device(requested: str) -> tuple[str, str | None]:
    """CUDA with bf16 where supported (fp16 otherwise), else CPU."""
    import torch

    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return "cpu", None
    if not torch.cuda.is_available():
        raise ConfigError("training.device: 'cuda' requested but no CUDA device is available")
    return "cuda", "bf16" if torch.cuda.is_bf16_supported() else "fp16"
