"""Quantised bases (QLoRA): a causal LM loaded with its linear layers in 4 or 8 bits through bitsandbytes, and the
16-bit alternative serving may ask for. The adapter trained on such a base stays in full precision."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlops.models.targets import CLASSIFIER_HEADS

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from mlops.models._base import ModelSource

# Set to 1 (or true) where a quantised adapter is served: its base loads in 16-bit instead of being re-quantised.
SERVE_16BIT_ENV = "MLOPS_SERVE_16BIT"
# Never quantised: the output heads, trained or kept in full precision. A classifier's new head and the BERT pooler
# beside it are trained in full (PEFT's modules_to_save), which a packed 4/8-bit weight cannot be.
_KEEP_FULL_PRECISION = ["lm_head", *CLASSIFIER_HEADS, "pooler.dense"]  # names match as module-name suffixes


def compute_dtype(device: str) -> torch.dtype:
    """The dtype quantised layers compute in: bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU."""
    import torch

    if device != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def half_precision_dtype(device: str) -> torch.dtype:
    """The 16-bit dtype for a base loaded unquantised: bf16, except fp16 on a GPU without bf16."""
    import torch

    if device == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def bnb_config(quantization: str, device: str) -> Any:
    """bitsandbytes' `BitsAndBytesConfig` for `model.quantization` (nf4, fp4: 4-bit with double quantisation; int8)."""
    from transformers import BitsAndBytesConfig

    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=_KEEP_FULL_PRECISION)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quantization,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype(device),
        llm_int8_skip_modules=_KEEP_FULL_PRECISION,
    )


def load_causal_lm(source: ModelSource, quantization: str = "none", device: str = "cpu") -> PreTrainedModel:
    """`source`'s causal LM, its linear layers (all but the output head) quantised as `quantization` asks on
    `device`; `none` loads it as the source gives it."""
    if quantization == "none":
        return source.load_causal_lm()
    return source.load_quantized("causal_lm", bnb_config(quantization, device), device)


def load_classifier(source: ModelSource, num_labels: int, quantization: str = "none", device: str = "cpu") -> PreTrainedModel:
    """`source`'s sequence classifier with a new `num_labels`-way head, its body's linear layers quantised as
    `quantization` asks on `device` (the head and pooler stay in full precision); `none` loads it as the source gives it."""
    if quantization == "none":
        return source.load_classifier(num_labels)
    return source.load_quantized("classifier", bnb_config(quantization, device), device, num_labels)


def is_quantized(model: Any) -> bool:
    """Whether `model` (or the base under a PEFT model) was loaded quantised."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False))


def serve_in_16bit() -> bool:
    """Whether serving was asked (through `SERVE_16BIT_ENV`) to load a quantised adapter's base in 16-bit."""
    return os.environ.get(SERVE_16BIT_ENV, "").strip().lower() in ("1", "true", "yes")


def serving_base(quantization: str) -> str:
    """How serving loads the base of an adapter trained on a `quantization` base: the card's `serving_base` entry."""
    if quantization == "none":
        return "as stored"
    return f"re-quantised to {quantization} at load; {SERVE_16BIT_ENV}=1 loads it in 16-bit instead"


def logical_numel(param: Any) -> int:
    """A weight's logical parameter count: a bitsandbytes 4-bit weight packs two values per byte and keeps its shape
    aside (in `quant_state`)."""
    import math

    shape = getattr(getattr(param, "quant_state", None), "shape", None)
    return math.prod(int(size) for size in shape) if shape is not None else int(param.numel())


def packed_weights(model: Any) -> list[Any]:
    """The weights and biases that PyTorch's dynamically quantised linear layers keep packed, outside `parameters()`
    and `buffers()`: an int8 weight tensor and a float bias per layer."""
    tensors = []
    for module in model.modules():
        if hasattr(module, "_packed_params") and callable(getattr(module, "weight", None)):
            tensors.append(module.weight())
            bias = module.bias() if callable(getattr(module, "bias", None)) else None
            if bias is not None:
                tensors.append(bias)
    return tensors
