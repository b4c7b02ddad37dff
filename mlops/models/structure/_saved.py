"""What a trained structure leaves next to PEFT's files (the layers kept, pruned heads, FFN adapters and gates, their
weights), and the served model rebuilt from it: base -> top layers dropped -> re-pruned heads -> FFN adapters -> PEFT
adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.errors import ConfigError
from mlops.models._peft import peft_wrapping
from mlops.models.structure._ffn import ADAPTER_NAME, attach_ffn_adapter, ffn_adapters
from mlops.models.structure._heads import prune_attention_heads
from mlops.models.structure._layers import drop_top_layers, transformer_layers

STRUCTURE_WEIGHTS = "mlops_structure.safetensors"


def _base_of(model: Any) -> Any:
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def save_structure(model: Any, out: Path) -> dict[str, Any]:
    """Write the weights PEFT does not save (FFN adapters; without PEFT, every trainable parameter, i.e. the
    task head too) to `STRUCTURE_WEIGHTS`, and return the card entry `load_adapted_model` rebuilds the model from."""
    from peft import PeftModel
    from safetensors.torch import save_file

    base = _base_of(model)
    adapters = ffn_adapters(base)
    first = next(iter(adapters.values()), None)
    weights = {f"{path}.{name}": t for path, m in adapters.items() for name, t in m.named_parameters(prefix=ADAPTER_NAME)}
    if not isinstance(model, PeftModel):
        weights |= {name: p for name, p in base.named_parameters() if p.requires_grad}
    if weights:
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(out / STRUCTURE_WEIGHTS))
    pruned = getattr(base.config, "pruned_heads", None) or {}
    return {
        "peft": isinstance(model, PeftModel),
        "num_hidden_layers": len(transformer_layers(base)[1]),
        "pruned_heads": {str(layer): list(heads) for layer, heads in pruned.items()},
        "ffn_adapters": sorted(adapters),
        "ffn_hidden_size": first.hidden_size if first is not None else None,
        "ffn_bottleneck_size": first.bottleneck_size if first is not None else None,
        "ffn_gate": bool(first.has_gate) if first is not None else False,
        "weights": STRUCTURE_WEIGHTS if weights else None,
    }


def keep_trained_layers(base: Any, card: dict[str, Any], adapter_dir: Path) -> None:
    """Drop the top layers of `base` that the adapter's model was trained without (`training.drop_layers`), as its
    card's `structure.num_hidden_layers` records; a card without it (an earlier release's) keeps every layer."""
    trained_layers = (card.get("structure") or {}).get("num_hidden_layers")
    if trained_layers is None:
        return
    available = len(transformer_layers(base)[1])
    if trained_layers > available:
        raise ConfigError(f"{adapter_dir}: trained with {trained_layers} layers, but its base model has only {available}")
    drop_top_layers(base, available - trained_layers)


def load_adapted_model(base: Any, adapter_dir: Path, card: dict[str, Any]) -> Any:
    """The served model: `base` cut to the layers it was trained with, re-pruned and given its FFN adapters as recorded
    in the card, their saved weights loaded, then PEFT's adapter applied. A card without a structure entry is a plain
    PEFT adapter; one without `num_hidden_layers` (an earlier release's) keeps every layer."""
    from peft import PeftModel

    structure = card.get("structure") or {"peft": True}
    keep_trained_layers(base, card, adapter_dir)
    if structure.get("pruned_heads"):
        prune_attention_heads(base, {int(layer): heads for layer, heads in structure["pruned_heads"].items()})
    for path in structure.get("ffn_adapters", []):
        attach_ffn_adapter(base.get_submodule(path), structure["ffn_hidden_size"], structure["ffn_bottleneck_size"], structure["ffn_gate"])
    if structure.get("weights"):
        from safetensors.torch import load_file

        saved = load_file(str(adapter_dir / structure["weights"]))
        result = base.load_state_dict(saved, strict=False)
        if result.unexpected_keys:
            raise ConfigError(f"{adapter_dir / structure['weights']}: weights for modules the model lacks: {result.unexpected_keys[:3]}")
    with peft_wrapping():
        model = PeftModel.from_pretrained(base, str(adapter_dir)) if structure.get("peft", True) else base
    enable_prefix_generation(model)
    return model.eval()


def enable_prefix_generation(model: Any) -> None:
    """Make `generate` use a PEFT prefix on transformers 5, which renamed the KV-cache argument to `cache`.

    PEFT 0.21 puts the prefix under `past_key_values`, which transformers then ignores in favour of its own
    (empty) `cache`: generation ran without the prefix. Here PEFT sees the cache under its old name, and
    the model gets PEFT's cache under the new one. No-op for other adapters.
    """
    from peft import PeftModelForCausalLM

    if not (isinstance(model, PeftModelForCausalLM) and model.active_peft_config.is_prompt_learning):
        return
    peft_model: Any = model  # the two hooks PEFT's `generate` calls are replaced on this instance only
    base_prepare = peft_model.base_model_prepare_inputs_for_generation
    peft_prepare = peft_model.prepare_inputs_for_generation

    def base_side(*args: Any, **kwargs: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = base_prepare(*args, **kwargs)
        if "cache" in inputs and "past_key_values" not in inputs:
            inputs["past_key_values"] = inputs.pop("cache")
        return inputs

    def model_side(*args: Any, **kwargs: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = peft_prepare(*args, **kwargs)
        if "past_key_values" in inputs and "cache" not in inputs:
            inputs["cache"] = inputs.pop("past_key_values")
        return inputs

    peft_model.base_model_prepare_inputs_for_generation = base_side
    peft_model.prepare_inputs_for_generation = model_side
