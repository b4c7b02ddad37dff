"""Structural tuning around the PEFT adapter: which bottom layers stay frozen, which attention heads are
pruned, and the bottleneck adapters and gates after each feed-forward block; saved next to the adapter
and re-applied when a served model loads. Heavy libraries are imported on first use."""

from mlops.structure._assembly import (
    STRUCTURE_WEIGHTS,
    StructureReport,
    adapt,
    calibration_batch,
    check_model_support,
    enable_prefix_generation,
    load_adapted_model,
    preflight,
    save_structure,
)
from mlops.structure._checks import LORA_PARAMETERS, structure_errors
from mlops.structure._ffn import ffn_adapter_class, ffn_adapters
from mlops.structure._heads import PruningReport, head_importance, heads_to_prune, prune_attention_heads, supports_head_pruning
from mlops.structure._layers import frozen_layer_count, transformer_layers

__all__ = [
    "LORA_PARAMETERS",
    "STRUCTURE_WEIGHTS",
    "PruningReport",
    "StructureReport",
    "adapt",
    "calibration_batch",
    "check_model_support",
    "enable_prefix_generation",
    "ffn_adapter_class",
    "ffn_adapters",
    "frozen_layer_count",
    "head_importance",
    "heads_to_prune",
    "load_adapted_model",
    "preflight",
    "prune_attention_heads",
    "save_structure",
    "structure_errors",
    "supports_head_pruning",
    "transformer_layers",
]
