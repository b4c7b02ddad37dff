"""Which modules an adapter trains, per architecture: LoRA targets and the modules trained in full with a new head."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# The new task head of a sequence classifier, by the names transformers gives it (PEFT's names too).
CLASSIFIER_HEADS = ("classifier", "score")


def default_head_modules(model: PreTrainedModel) -> list[str]:
    """Modules trained in full beside the new classifier head (PEFT adds the head itself).

    A BERT pooler is part of the classification head; sentence-embedding checkpoints such as
    all-MiniLM-L6-v2 never trained it (they mean-pool), so frozen it starves the new head.
    """
    return ["pooler"] if any(name.endswith("pooler") for name, _ in model.named_modules()) else []


def default_lora_targets(model: PreTrainedModel) -> list[str]:
    """LoRA target modules by architecture: every linear layer of the encoder blocks.

    Adapting all blocks' linear layers rather than only query/value (as QLoRA argues) is what
    lets LoRA learn at full fine-tuning learning rates; measured on the demo data it added 3-6
    points of test F1 at the guide's learning rates.
    """
    model_type = getattr(model.config, "model_type", "")
    if model_type in ("bert", "roberta", "xlm-roberta", "electra"):
        return ["query", "key", "value", "output.dense", "intermediate.dense"]
    if model_type in ("distilbert",):
        return ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"]
    return ["q_proj", "k_proj", "v_proj", "o_proj"]


_LLAMA_LIKE_MODEL_TYPES = frozenset(
    {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v2", "deepseek_v3"}
)


# The attention projections of LLaMA-style blocks (DeepSeek-LLM is one), then those of DeepSeek-V2/V3's multi-head
# latent attention: queries through a low-rank pair (q_a/q_b; V2-Lite has a plain q_proj instead), keys and values
# through a shared compressed projection (kv_a_proj_with_mqa) and its expansion (kv_b_proj).
_ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")


def default_causal_lm_targets(model: PreTrainedModel) -> list[str]:
    """LoRA target modules for a decoder-only LM: the attention projections of LLaMA-style and DeepSeek blocks.

    Only the projections the model has are returned: DeepSeek-V2/V3's latent attention has `q_a_proj`, `q_b_proj`,
    `kv_a_proj_with_mqa`, `kv_b_proj` and `o_proj`, and no `k_proj` or `v_proj`. Other architectures get
    `default_lora_targets`.
    """
    if getattr(model.config, "model_type", "") in _LLAMA_LIKE_MODEL_TYPES:
        leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        present = [p for p in _ATTENTION_PROJECTIONS if p in leaf_names]
        if present:
            return present
    return default_lora_targets(model)
