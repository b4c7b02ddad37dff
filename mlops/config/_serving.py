"""The serving section of the experiment config: how the logged model is served (its adapter merged into the base or
not, the precision of its base). A trial's choice is written into the adapter card, so the served model runs with the
settings the trial was trained and measured with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from mlops.config._training import _help

# Serving precisions: the base as stored (fp32); its linear layers quantised to int8 at load through PyTorch's dynamic
# quantisation (CPU); or loaded through bitsandbytes in int8 or 4-bit NF4 (CUDA only).
Precision = Literal["fp32", "dynamic_int8", "bnb_int8", "bnb_nf4"]
SERVING_PRECISIONS: tuple[str, ...] = get_args(Precision)
CUDA_ONLY_PRECISIONS = ("bnb_int8", "bnb_nf4")
# The serving settings a search space may tune, as dotted names (as logged on a trial's run).
SERVING_PARAMETERS = ("serving.merge_adapter", "serving.precision")


@dataclass
class ServingConfig:
    """How the logged model serves: what `mlflow models serve` loads is what the trial used."""

    merge_adapter: bool = field(
        default=False,
        metadata=_help("fold the LoRA weights into the base at load (one matmul per layer instead of two); LoRA adapters only"),
    )
    precision: Precision = field(
        default="fp32",
        metadata=_help(
            "the served base: fp32 (as stored); dynamic_int8 (linear layers quantised to int8 by PyTorch's dynamic "
            "quantisation, CPU); bnb_int8, bnb_nf4 (bitsandbytes, CUDA only; refused where there is no GPU)"
        ),
    )
