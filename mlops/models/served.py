"""What the served model is made of beyond its structure: the adapter merged into the base or not, and the precision
of the base (`serving` in the config, written into the adapter card). The pyfunc model applies them at load, so the
served model is the one the trial used; a card from an earlier release has neither and serves as stored, unmerged."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from mlops.config import CUDA_ONLY_PRECISIONS, SERVING_PRECISIONS, ServingConfig
from mlops.errors import ConfigError

if TYPE_CHECKING:
    import torch

# bitsandbytes serving precisions as the `model.quantization` names that load a base that way (`bnb_config`).
_BNB_QUANTIZATION = {"bnb_int8": "int8", "bnb_nf4": "nf4"}
# Linear layers that belong to the adapter, not the base: left in full precision by dynamic quantisation (a LoRA
# layer reads its A/B weights' dtype; a head trained in full keeps its weights as trained).
_ADAPTER_MODULES = re.compile(r"(?:^|\.)(?:lora_A|lora_B|lora_magnitude_vector|modules_to_save|ffn_adapter)(?:\.|$)")


def serving_settings(card: dict[str, Any]) -> ServingConfig:
    """The card's serving settings (`serving`), each one the card lacks at its default (fp32, unmerged)."""
    entry = card.get("serving") or {}
    settings = ServingConfig(**{k: v for k, v in entry.items() if k in ServingConfig.__dataclass_fields__})
    if settings.precision not in SERVING_PRECISIONS:
        raise ConfigError(f"serving.precision: must be one of {', '.join(SERVING_PRECISIONS)}, got {settings.precision!r}")
    return settings


def base_quantization(settings: ServingConfig, cuda: bool) -> str:
    """The `model.quantization` the served base loads with for `settings.precision` ("none" unless bitsandbytes).
    A bitsandbytes precision needs a CUDA GPU: on a machine without one it is refused, not silently served otherwise."""
    if settings.precision in CUDA_ONLY_PRECISIONS and not cuda:
        raise ConfigError(
            f"serving.precision: {settings.precision} serves the base through bitsandbytes on a CUDA GPU, and this machine "
            "has none; serve it on a GPU, or train with serving.precision fp32 or dynamic_int8 for CPU serving"
        )
    return _BNB_QUANTIZATION.get(settings.precision, "none")


def finish_for_serving(model: Any, settings: ServingConfig) -> Any:
    """`model` (the adapted model, `load_adapted_model`) as served: its LoRA weights merged into the base where
    `settings.merge_adapter` asks (other adapters have nothing to merge and are served as they are), then with
    `dynamic_int8`, the base's linear layers quantised to int8 (the adapter's stay in full precision unless merged)."""
    from peft import PeftModel

    if settings.merge_adapter and isinstance(model, PeftModel) and not model.active_peft_config.is_prompt_learning:
        model = model.merge_and_unload()
    if settings.precision == "dynamic_int8":
        model = quantize_linear_dynamic(model)
    return model.eval()


def quantize_linear_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    """The base's `nn.Linear` layers replaced in place by PyTorch's dynamically quantised int8 ones (weights int8,
    activations quantised per batch; CPU kernels); the adapter's linear layers are left as they are."""
    import torch

    names = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear) and not _ADAPTER_MODULES.search(name)}
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API is still the one PyTorch ships, and the notice
        # would reach every served model's log.
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
        quantized: torch.nn.Module = torch.ao.quantization.quantize_dynamic(model.to("cpu"), names, dtype=torch.qint8, inplace=True)
    return quantized
