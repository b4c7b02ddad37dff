"""tiny-random-deepseek-v3: a 2-layer DeepSeek-V3 (latent attention, mixture of experts) built in code, with
tiny-random-llama's tokenizer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.models._base import register_source
from mlops.models.tiny_llama import TinyRandomLlamaSource

if TYPE_CHECKING:
    from transformers import PretrainedConfig


class TinyRandomDeepseekV3Source(TinyRandomLlamaSource):
    """DeepSeek-V3's blocks at 64 wide: multi-head latent attention (q_a/q_b, kv_a_proj_with_mqa/kv_b, o_proj), one
    dense layer, then one MoE layer of 4 routed experts (2 per token) and a shared one. Fixed weights. For tests."""

    name = "tiny-random-deepseek-v3"
    description = "2-layer, 64-wide random DeepSeek-V3 (MLA + MoE) built in code; tiny-random-llama's tokenizer (tests, smoke runs)"

    causal_lm_class = "DeepseekV3ForCausalLM"
    classifier_class = "DeepseekV3ForSequenceClassification"

    def _config(self) -> PretrainedConfig:
        from transformers import DeepseekV3Config

        return DeepseekV3Config(
            hidden_size=64,
            intermediate_size=128,
            moe_intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            n_routed_experts=4,
            n_shared_experts=1,
            num_experts_per_tok=2,
            first_k_dense_replace=1,
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_rope_head_dim=8,
            qk_nope_head_dim=8,
            v_head_dim=16,
            n_group=1,
            topk_group=1,
            **self._token_settings(),
        )


register_source(TinyRandomDeepseekV3Source())
