"""Put a base model together for training: dropped top layers, pruned heads, FFN adapters and gates, the PEFT
adapter, frozen bottom layers. Serving rebuilds the same model from what `mlops.models.structure.save_structure` wrote."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import CUDA_ONLY_PRECISIONS, PREFIX_CLASSIFIER_REFUSAL, searched_values
from mlops.errors import ConfigError
from mlops.models import CLASSIFIER_HEADS, is_quantized, peft_wrapping
from mlops.models.structure import (
    PruningReport,
    attach_ffn_adapter,
    drop_layers_error,
    drop_top_layers,
    enable_prefix_generation,
    ffn_adapters,
    ffn_output_module,
    freeze_bottom_layers,
    frozen_layer_count,
    prune_least_important_heads,
    supports_head_pruning,
    transformer_layers,
)
from mlops.tasks import spec_for

if TYPE_CHECKING:
    import torch

    from mlops.config import ExperimentConfig, TrainingConfig
    from mlops.models import ModelSource

# `training.lora_init` as PEFT's `init_lora_weights`.
_PEFT_LORA_INITS: dict[str, Any] = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora"}
# Initialisations that move the base weights (to the residual of the decomposition they start A and B from): the
# saved adapter is converted to a plain LoRA against the unchanged base, from the adapter as it started.
_MUTATING_INITS = ("pissa", "olora")


@dataclass
class StructureReport:
    """What `adapt` did, as run metrics and JSON artifacts."""

    frozen_layers: int = 0
    dropped_layers: int = 0
    pruning: PruningReport | None = None
    initial_adapter: Path | None = None  # PiSSA/OLoRA: the adapter before training, to convert the trained one against

    def metrics(self) -> dict[str, float]:
        layers = {"frozen_layers": float(self.frozen_layers), "dropped_layers": float(self.dropped_layers)}
        return {**layers, **(self.pruning.metrics() if self.pruning else {})}

    def documents(self) -> dict[str, Any]:
        return {"pruned_heads.json": self.pruning.document()} if self.pruning else {}


def check_model_support(model: Any, hp: TrainingConfig) -> None:
    """Refuse, naming the key and the architecture, structure options this model cannot take."""
    architecture = type(model).__name__
    if hp.prune_heads > 0 and not supports_head_pruning(model):
        raise ConfigError(
            f"training.prune_heads: head pruning is not supported for {architecture}; it needs BERT-style self-attention "
            "(attention.self.query/key/value and attention.output.dense), e.g. model.source tiny-random-bert or minilm-l6"
        )
    needs_ffn = [key for key, wanted in (("adapter", hp.adapter == "bottleneck"), ("ffn_gate", hp.ffn_gate)) if wanted]
    if needs_ffn or hp.freeze_ratio > 0 or hp.drop_layers > 0:
        _, layers = transformer_layers(model)
        for key in needs_ffn:
            ffn_output_module(layers[0], architecture, key)
        error = drop_layers_error(model, hp.drop_layers)
        if error is not None:
            raise ConfigError(error)


def preflight(config: ExperimentConfig, source: ModelSource) -> None:
    """Before any run starts: refuse a serving precision this machine cannot serve, then load the base model once
    and refuse the structure options (in `training` or searched) that its architecture cannot take. Nothing is loaded
    when no such option is set."""

    def used(name: str) -> list[Any]:
        return [value for _, value in searched_values(config, name)]

    _refuse_cuda_only_serving(config)

    hp = replace(
        config.training,
        prune_heads=max(float(v) for v in used("prune_heads")),
        freeze_ratio=max(float(v) for v in used("freeze_ratio")),
        ffn_gate=any(used("ffn_gate")),
        adapter="bottleneck" if "bottleneck" in used("adapter") else "lora",
        drop_layers=max(int(v) for v in used("drop_layers")),
    )
    if hp.prune_heads == 0 and hp.freeze_ratio == 0 and not hp.ffn_gate and hp.adapter != "bottleneck" and hp.drop_layers == 0:
        return
    check_model_support(source.load_classifier(2) if config.spec.has_classifier_head else source.load_causal_lm(), hp)


def _refuse_cuda_only_serving(config: ExperimentConfig) -> None:
    """A bitsandbytes serving precision (fixed or searched) on a machine without CUDA: every model it logs would be
    refused when served (`mlops.models.base_quantization`), so the run is refused before it starts."""
    import torch

    cuda_only = [(where, value) for where, value in searched_values(config, "serving.precision") if value in CUDA_ONLY_PRECISIONS]
    if cuda_only and not torch.cuda.is_available():
        where, value = cuda_only[0]
        raise ConfigError(
            f"{where}: {value} serves through bitsandbytes on a CUDA GPU, and this machine has none; use fp32 or dynamic_int8"
        )


def calibration_batch(tokenizer: Any, texts: list[str], labels: list[int], max_length: int, size: int) -> dict[str, torch.Tensor]:
    """The first `size` training examples, padded, with labels: the batch head importance is measured on."""
    import torch

    enc = tokenizer(texts[:size], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {**enc, "labels": torch.tensor(labels[:size], dtype=torch.long)}


def _peft_config(
    hp: TrainingConfig, task: str, target_modules: list[str] | str, head_modules: list[str] | None, layers: tuple[str, int, int]
) -> Any:
    """PEFT's config for `hp.adapter`; LoRA (with its variants: DoRA, rsLoRA, the initialisation) leaves out the bottom
    `frozen` of the (`layers_path`, `num_layers`) layers."""
    from peft import LoraConfig, PrefixTuningConfig

    layers_path, num_layers, frozen = layers
    if hp.adapter == "prefix":
        return PrefixTuningConfig(
            task_type=spec_for(task).peft_task_type, num_virtual_tokens=hp.num_virtual_tokens, modules_to_save=head_modules
        )
    return LoraConfig(
        task_type=spec_for(task).peft_task_type,
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=target_modules,
        modules_to_save=head_modules,
        layers_to_transform=list(range(frozen, num_layers)) if frozen else None,
        layers_pattern=layers_path.rsplit(".", 1)[-1] if frozen else None,
        use_dora=hp.use_dora,
        use_rslora=hp.use_rslora,
        init_lora_weights=_PEFT_LORA_INITS[hp.lora_init],
    )


def _save_initial_adapter(model: Any, report: StructureReport) -> None:
    """Keep the freshly initialised PiSSA/OLoRA adapter (as PEFT asks: marked as a plain initialisation) in a scratch
    directory that lives as long as `report`; `save_adapter` converts the trained adapter against it."""
    root = Path(tempfile.mkdtemp(prefix="mlops-initial-adapter-"))
    weakref.finalize(report, shutil.rmtree, root, True)
    config = model.peft_config["default"]
    init = config.init_lora_weights
    config.init_lora_weights = True
    try:
        model.save_pretrained(str(root / "initial"))
    finally:
        config.init_lora_weights = init
    report.initial_adapter = root / "initial"


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
    target_modules: list[str] | str,
    head_modules: list[str] | None,
    calibration: dict[str, torch.Tensor] | None = None,
) -> tuple[Any, StructureReport]:
    """`base` with the structure `hp` asks for: its top `drop_layers` layers removed, heads pruned (on `calibration`),
    FFN adapters and gates in the top layers, then the PEFT adapter (lora, prefix) or, for `bottleneck`, only the FFN adapters and the task
    head trainable. The bottom `freeze_ratio` of the layers keep no trainable parameter. A quantised base is
    prepared for k-bit training first (PEFT's `prepare_model_for_kbit_training`)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    spec = spec_for(task)
    if hp.adapter == "prefix" and spec.has_classifier_head:
        raise ConfigError(f"training.adapter: {PREFIX_CLASSIFIER_REFUSAL}")
    check_model_support(base, hp)
    if is_quantized(base):
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=hp.gradient_checkpointing)
    report = StructureReport(dropped_layers=hp.drop_layers)
    drop_top_layers(base, hp.drop_layers)  # first: head pruning and frozen layers count the layers that stay
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
    heads = [name for name, _ in base.named_children() if name in CLASSIFIER_HEADS] if spec.has_classifier_head else []
    if hp.adapter == "bottleneck":
        model = base
        _train_only(model, heads + list(head_modules or []))
    else:
        with peft_wrapping():
            model = get_peft_model(
                base, _peft_config(hp, task, target_modules, head_modules, (layers_path, len(layers), report.frozen_layers))
            )
        enable_prefix_generation(model)
        if hp.adapter == "lora" and hp.lora_init in _MUTATING_INITS:
            _save_initial_adapter(model, report)
    for adapter in ffn_adapters(base).values():
        adapter.requires_grad_(True)
    freeze_bottom_layers(model, layers_path, report.frozen_layers)
    return model, report
