"""Put a base model together for training (pruned heads, FFN adapters, the PEFT adapter, frozen bottom layers),
and again for serving from what `save_structure` wrote next to PEFT's files."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import ConfigError
from mlops.structure._ffn import ADAPTER_NAME, ffn_adapters
from mlops.structure._heads import PruningReport

if TYPE_CHECKING:
    import torch

    from mlops.config import ExperimentConfig, TrainingConfig
    from mlops.models import ModelSource

STRUCTURE_WEIGHTS = "mlops_structure.safetensors"
_CLASSIFIER_HEADS = ("classifier", "score")  # the new task head of a sequence classifier (PEFT's names too)
_PEFT_TASK_TYPES = {"classification": "SEQ_CLS", "summarization": "CAUSAL_LM"}
PREFIX_CLASSIFIER_REFUSAL = (
    "PEFT refuses prefix tuning for sequence classifiers here (their forward takes no past_key_values in transformers 5); "
    "use lora or bottleneck"
)


@dataclass
class StructureReport:
    """What `adapt` did, as run metrics and JSON artifacts."""

    frozen_layers: int = 0
    pruning: PruningReport | None = None

    def metrics(self) -> dict[str, float]:
        return {"frozen_layers": float(self.frozen_layers), **(self.pruning.metrics() if self.pruning else {})}

    def documents(self) -> dict[str, Any]:
        return {"pruned_heads.json": self.pruning.document()} if self.pruning else {}


def check_model_support(model: Any, hp: TrainingConfig) -> None:
    """Refuse, naming the key and the architecture, structure options this model cannot take."""
    from mlops.structure._heads import supports_head_pruning
    from mlops.structure._layers import ffn_output_module, transformer_layers

    architecture = type(model).__name__
    if hp.prune_heads > 0 and not supports_head_pruning(model):
        raise ConfigError(
            f"training.prune_heads: head pruning is not supported for {architecture}; it needs BERT-style self-attention "
            "(attention.self.query/key/value and attention.output.dense), e.g. model.source tiny-random-bert or minilm-l6"
        )
    needs_ffn = [key for key, wanted in (("adapter", hp.adapter == "bottleneck"), ("ffn_gate", hp.ffn_gate)) if wanted]
    if needs_ffn or hp.freeze_ratio > 0:
        _, layers = transformer_layers(model)
        for key in needs_ffn:
            ffn_output_module(layers[0], architecture, key)


def preflight(config: ExperimentConfig, source: ModelSource) -> None:
    """Before any run starts: load the base model once and refuse the structure options (in `training` or
    searched) that its architecture cannot take. Nothing is loaded when no such option is set."""
    from mlops.structure._checks import searched_values

    def used(name: str) -> list[Any]:
        return [value for _, value in searched_values(config, name)]

    hp = replace(
        config.training,
        prune_heads=max(float(v) for v in used("prune_heads")),
        freeze_ratio=max(float(v) for v in used("freeze_ratio")),
        ffn_gate=any(used("ffn_gate")),
        adapter="bottleneck" if "bottleneck" in used("adapter") else "lora",
    )
    if hp.prune_heads == 0 and hp.freeze_ratio == 0 and not hp.ffn_gate and hp.adapter != "bottleneck":
        return
    check_model_support(source.load_classifier(2) if config.task == "classification" else source.load_causal_lm(), hp)


def calibration_batch(tokenizer: Any, texts: list[str], labels: list[int], max_length: int, size: int) -> dict[str, torch.Tensor]:
    """The first `size` training examples, padded, with labels: the batch head importance is measured on."""
    import torch

    enc = tokenizer(texts[:size], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {**enc, "labels": torch.tensor(labels[:size], dtype=torch.long)}


def _peft_config(
    hp: TrainingConfig, task: str, target_modules: list[str], head_modules: list[str] | None, layers: tuple[str, int, int]
) -> Any:
    """PEFT's config for `hp.adapter`; LoRA leaves out the bottom `frozen` of the (`layers_path`, `num_layers`) layers."""
    from peft import LoraConfig, PrefixTuningConfig

    layers_path, num_layers, frozen = layers
    if hp.adapter == "prefix":
        return PrefixTuningConfig(task_type=_PEFT_TASK_TYPES[task], num_virtual_tokens=hp.num_virtual_tokens, modules_to_save=head_modules)
    return LoraConfig(
        task_type=_PEFT_TASK_TYPES[task],
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=target_modules,
        modules_to_save=head_modules,
        layers_to_transform=list(range(frozen, num_layers)) if frozen else None,
        layers_pattern=layers_path.rsplit(".", 1)[-1] if frozen else None,
    )


def _train_only(model: Any, modules: list[str]) -> None:
    """Freeze the base; the modules named (by path or path suffix, like PEFT's `modules_to_save`) train in full."""
    model.requires_grad_(False)
    for name, module in model.named_modules():
        if any(name == m or name.endswith(f".{m}") for m in modules):
            module.requires_grad_(True)


def adapt(
    base: Any,
    hp: TrainingConfig,
    task: str,
    target_modules: list[str],
    head_modules: list[str] | None,
    calibration: dict[str, torch.Tensor] | None = None,
) -> tuple[Any, StructureReport]:
    """`base` with the structure `hp` asks for: heads pruned (on `calibration`), FFN adapters and gates in the
    top layers, then the PEFT adapter (lora, prefix) or, for `bottleneck`, only the FFN adapters and the task
    head trainable. The bottom `freeze_ratio` of the layers keep no trainable parameter."""
    from peft import get_peft_model

    from mlops.structure._ffn import attach_ffn_adapter
    from mlops.structure._heads import prune_least_important_heads
    from mlops.structure._layers import ffn_output_module, freeze_bottom_layers, frozen_layer_count, transformer_layers

    if hp.adapter == "prefix" and task == "classification":
        raise ConfigError(f"training.adapter: {PREFIX_CLASSIFIER_REFUSAL}")
    check_model_support(base, hp)
    report = StructureReport()
    if hp.prune_heads > 0:
        if calibration is None:
            raise ConfigError(f"training.prune_heads: head pruning needs a labelled calibration batch; {task} provides none")
        report.pruning = prune_least_important_heads(base, hp.prune_heads, calibration)
    layers_path, layers = transformer_layers(base)
    report.frozen_layers = frozen_layer_count(len(layers), hp.freeze_ratio)
    bottleneck = max(1, base.config.hidden_size // hp.reduction_factor) if hp.adapter == "bottleneck" else None
    if bottleneck or hp.ffn_gate:
        for index in range(report.frozen_layers, len(layers)):
            ffn = ffn_output_module(layers[index], type(base).__name__, "adapter" if bottleneck else "ffn_gate")
            attach_ffn_adapter(ffn, base.config.hidden_size, bottleneck, hp.ffn_gate)
    heads = [name for name, _ in base.named_children() if name in _CLASSIFIER_HEADS] if task == "classification" else []
    if hp.adapter == "bottleneck":
        model = base
        _train_only(model, heads + list(head_modules or []))
    else:
        model = get_peft_model(base, _peft_config(hp, task, target_modules, head_modules, (layers_path, len(layers), report.frozen_layers)))
        enable_prefix_generation(model)
    for adapter in ffn_adapters(base).values():
        adapter.requires_grad_(True)
    freeze_bottom_layers(model, layers_path, report.frozen_layers)
    return model, report


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
        "pruned_heads": {str(layer): list(heads) for layer, heads in pruned.items()},
        "ffn_adapters": sorted(adapters),
        "ffn_hidden_size": first.hidden_size if first is not None else None,
        "ffn_bottleneck_size": first.bottleneck_size if first is not None else None,
        "ffn_gate": bool(first.has_gate) if first is not None else False,
        "weights": STRUCTURE_WEIGHTS if weights else None,
    }


def load_adapted_model(base: Any, adapter_dir: Path, card: dict[str, Any]) -> Any:
    """The served model: `base` re-pruned and given its FFN adapters as recorded in the card, their saved weights
    loaded, then PEFT's adapter applied. A card without a structure entry is a plain PEFT adapter."""
    from peft import PeftModel

    from mlops.structure._ffn import attach_ffn_adapter
    from mlops.structure._heads import prune_attention_heads

    structure = card.get("structure") or {"peft": True}
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
