"""Model surgery beside the PEFT adapter: where the transformer layers and feed-forward blocks are, dropped top
layers, attention-head pruning, bottleneck adapters and gates after each FFN, and the saved structure a served model is rebuilt from.
Heavy libraries are imported on first use."""

from mlops.models.structure._ffn import attach_ffn_adapter, ffn_adapter_class, ffn_adapters
from mlops.models.structure._heads import (
    PruningReport,
    head_importance,
    heads_to_prune,
    prune_attention_heads,
    prune_least_important_heads,
    supports_head_pruning,
)
from mlops.models.structure._layers import (
    drop_layers_error,
    drop_top_layers,
    ffn_output_module,
    freeze_bottom_layers,
    frozen_layer_count,
    layer_index_pattern,
    transformer_layers,
)
from mlops.models.structure._saved import (
    STRUCTURE_WEIGHTS,
    enable_prefix_generation,
    keep_trained_layers,
    load_adapted_model,
    save_structure,
)

__all__ = [
    "STRUCTURE_WEIGHTS",
    "PruningReport",
    "attach_ffn_adapter",
    "drop_layers_error",
    "drop_top_layers",
    "enable_prefix_generation",
    "ffn_adapter_class",
    "ffn_adapters",
    "ffn_output_module",
    "freeze_bottom_layers",
    "frozen_layer_count",
    "head_importance",
    "heads_to_prune",
    "keep_trained_layers",
    "layer_index_pattern",
    "load_adapted_model",
    "prune_attention_heads",
    "prune_least_important_heads",
    "save_structure",
    "supports_head_pruning",
    "transformer_layers",
]
