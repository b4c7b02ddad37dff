"""Where a model's transformer layers and their feed-forward blocks are, how many bottom layers stay frozen, and
dropping the top layers (layer pruning)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlops.errors import ConfigError

if TYPE_CHECKING:
    import torch

# The names PEFT's `layers_pattern` also knows: the ModuleList holding a model's transformer layers.
_LAYER_LIST_NAMES = ("layer", "layers", "h", "block", "blocks")


def transformer_layers(model: Any) -> tuple[str, torch.nn.ModuleList]:
    """The path and the ModuleList of the model's transformer layers (BERT: `bert.encoder.layer`, LLaMA: `model.layers`)."""
    import torch

    count = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.rsplit(".", 1)[-1] in _LAYER_LIST_NAMES and len(module) == count:
            return name, module
    raise ConfigError(f"training.freeze_ratio: cannot find the transformer layers of {type(model).__name__}")


def frozen_layer_count(num_layers: int, freeze_ratio: float) -> int:
    """The bottom layers left without trainable parameters: `freeze_ratio` of them, rounded down."""
    return int(num_layers * freeze_ratio)


def ffn_output_module(layer: Any, architecture: str, key: str) -> torch.nn.Module:
    """The module whose output is the layer's feed-forward result: BERT's `output` (after `intermediate`), LLaMA's `mlp`."""
    if hasattr(layer, "intermediate") and hasattr(layer, "output"):
        module: torch.nn.Module = layer.output
        return module
    if hasattr(layer, "mlp"):
        module = layer.mlp
        return module
    raise ConfigError(f"training.{key}: {architecture} has no BERT-style (intermediate/output) or LLaMA-style (mlp) feed-forward block")


def layer_index_pattern(layers_path: str) -> re.Pattern[str]:
    """Matches a parameter name inside one of the layers and captures the layer's index (also under PEFT's prefixes)."""
    return re.compile(rf"(?:^|\.){re.escape(layers_path)}\.(\d+)\.")


def freeze_bottom_layers(model: torch.nn.Module, layers_path: str, frozen: int) -> None:
    """No parameter of the bottom `frozen` layers trains, whatever the adapter put there (e.g. a module saved in full)."""
    pattern = layer_index_pattern(layers_path)
    for name, param in model.named_parameters():
        match = pattern.search(name)
        if match and int(match.group(1)) < frozen:
            param.requires_grad_(False)


def drop_layers_error(model: Any, count: int) -> str | None:
    """Why the top `count` layers of `model` cannot be dropped (none may be left), if they cannot."""
    total = len(transformer_layers(model)[1])
    if 0 <= count < total:
        return None
    return f"training.drop_layers: {count} of the {total} layers of {type(model).__name__}; at least one must stay (use 0..{total - 1})"


def drop_top_layers(model: Any, count: int) -> int:
    """Remove the top `count` transformer layers of `model` (layer pruning: the top layers of a pretrained model matter
    least to a fine-tuned task), in place; returns the layers kept. The config follows (`num_hidden_layers`, and
    per-layer lists such as `layer_types`), so a KV cache, PEFT and a served copy see the smaller model. The kept
    layers keep their indices, so their attention caches and any per-layer record (pruned heads) stay valid."""
    path, layers = transformer_layers(model)
    if count == 0:
        return len(layers)
    error = drop_layers_error(model, count)
    if error is not None:
        raise ConfigError(error)
    kept = len(layers) - count
    parent, _, name = path.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    setattr(owner, name, layers[:kept])  # slicing a ModuleList gives a ModuleList of the same modules
    config = model.config
    config.num_hidden_layers = kept
    for key, value in list(vars(config).items()):  # per-layer settings (e.g. layer_types, a sliding window per layer)
        if key != "num_hidden_layers" and isinstance(value, list) and len(value) == kept + count:
            setattr(config, key, value[:kept])
    return kept
