"""The memory estimator against what the toolkit really builds: parameter counts of the shipped architectures and of
the tiny models, quantised weight bytes of a loaded base, and the activations autograd keeps for the backward pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import prepare_model_for_kbit_training
from transformers import LlamaConfig, LlamaForCausalLM

from mlops.config import TrainingConfig
from mlops.models import PretrainedDirSource, TinyRandomLlamaSource, load_causal_lm, resolve_source
from mlops.models.architecture import _architecture_of as architecture
from mlops.models.architecture import architecture_of, from_config, shipped_architectures
from mlops.models.memory import TrainingShape, estimate_peak_memory, trainable_parameters, weight_bytes
from mlops.train.structure import adapt


@pytest.mark.parametrize(
    ("hub_id", "published_billions"),
    [("deepseek-ai/deepseek-llm-7b-base", 6.91), ("deepseek-ai/DeepSeek-V2-Lite", 15.7), ("deepseek-ai/DeepSeek-V3", 671.0)],
)
def test_shipped_figures_give_the_published_parameter_counts(hub_id: str, published_billions: float) -> None:
    assert hub_id in shipped_architectures()
    arch = architecture_of(hub_id, "summarization")
    assert arch.total_params / 1e9 == pytest.approx(published_billions, rel=0.01)


@pytest.mark.parametrize("source", ["tiny-random-llama", "tiny-random-deepseek-v3"])
def test_estimator_counts_what_the_toolkit_builds(source: str) -> None:
    arch = architecture_of(source, "summarization")
    base = resolve_source(source).load_causal_lm()
    assert arch.total_params == sum(p.numel() for p in base.parameters())
    assert weight_bytes(arch, "none") == sum(p.numel() * p.element_size() for p in base.parameters())
    hp = TrainingConfig(lora_r=4, freeze_ratio=0.5)
    model, _ = adapt(base, hp, "summarization", list(arch.default_targets), None)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    shape = TrainingShape(batch_size=2, seq_len=32, lora_r=4, freeze_ratio=0.5, device="cpu")
    assert trainable_parameters(arch, shape) == trained > 0
    bigger = estimate_peak_memory(arch, TrainingShape(batch_size=4, seq_len=32, lora_r=4, freeze_ratio=0.5, device="cpu"))
    assert bigger.activations == 2 * estimate_peak_memory(arch, shape).activations  # activations scale with the tokens
    every_layer = estimate_peak_memory(arch, TrainingShape(4, 32, lora_r=4, device="cpu"))
    checkpointed = estimate_peak_memory(arch, TrainingShape(4, 32, lora_r=4, gradient_checkpointing=True, device="cpu"))
    assert bigger.activations < every_layer.activations  # frozen bottom layers keep nothing for the backward pass
    assert checkpointed.activations < every_layer.activations


def _tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of every weight and buffer, with bitsandbytes' quantisation constants (absmax, nested absmax, codes)."""
    tensors = [*model.parameters(), *model.buffers()]
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            tensors += [state.absmax, state.code]
            if state.state2 is not None:
                tensors += [state.state2.absmax, state.state2.code]
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


@pytest.mark.parametrize("quantization", ["nf4", "int8"])
def test_quantized_weight_estimate_matches_the_loaded_base(quantization: str, tmp_path: Path) -> None:
    config = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4)
    config.vocab_size = 2048
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    base = prepare_model_for_kbit_training(load_causal_lm(PretrainedDirSource(str(tmp_path)), quantization, "cpu"), False)
    estimate = weight_bytes(from_config("random-llama", config, "summarization"), quantization)
    assert estimate / _tensor_bytes(base) == pytest.approx(1.0, abs=0.02)
    assert estimate < weight_bytes(from_config("random-llama", config, "summarization"), "none") / 2


def _bytes_kept_for_backward(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """What autograd keeps for the backward pass of one forward: the storages of saved tensors that are not weights."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights and storage.nbytes():
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=ids)
    return sum(kept.values())


@pytest.mark.parametrize("source", ["tiny-random-llama", "tiny-random-deepseek-v3"])
@pytest.mark.parametrize("freeze_ratio", [0.0, 0.5])
def test_activation_estimate_matches_what_autograd_keeps(source: str, freeze_ratio: float) -> None:
    arch = architecture_of(source, "summarization")
    base = resolve_source(source).load_causal_lm()
    base.config.use_cache = False
    hp = TrainingConfig(lora_r=4, lora_dropout=0.05, freeze_ratio=freeze_ratio)
    model, _ = adapt(base, hp, "summarization", list(arch.default_targets), None)
    model.train()
    ids = torch.randint(0, arch.vocab_size, (4, 64), generator=torch.Generator().manual_seed(0))
    kept = _bytes_kept_for_backward(model, ids)
    shape = TrainingShape(4, 64, lora_r=4, freeze_ratio=freeze_ratio, lora_dropout=0.05, device="cpu")
    assert 0.85 <= estimate_peak_memory(arch, shape).activations / kept <= 1.15


def test_tiny_built_in_sources_give_their_config_without_building_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object) -> None:
        raise AssertionError("the planner built the model")

    monkeypatch.setattr(TinyRandomLlamaSource, "load_causal_lm", refuse)
    architecture.cache_clear()
    assert architecture_of("tiny-random-deepseek-v3", "classification").n_routed_experts == 4
