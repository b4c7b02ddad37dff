"""The model and training sections of the experiment config, and the decoding settings summarisation generates with."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

# Structural keys beyond the LoRA settings: the adapter kind and its size, FFN gates, frozen layers, pruned heads,
# dropped top layers.
_ARCHITECTURE = ("adapter", "num_virtual_tokens", "reduction_factor", "ffn_gate", "freeze_ratio", "prune_heads", "drop_layers")
# LoRA variants: weight-decomposed (DoRA), rank-stabilised scaling (rsLoRA), and how A and B start.
_LORA_VARIANTS = ("use_dora", "use_rslora", "lora_init")
LORA_INITS = ("default", "gaussian", "pissa", "olora")
# Base weights as loaded for training and serving: as stored, or quantised through bitsandbytes (QLoRA).
QUANTIZATIONS = ("none", "nf4", "fp4", "int8")
# `model.target_modules` as a string: every linear layer but the output head (PEFT's shorthand).
ALL_LINEAR = "all-linear"
# The hyperparameters a trial or `finetune` may override, with the MLproject/CLI names.
HYPERPARAMETERS = (
    "learning_rate",
    "batch_size",
    "epochs",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "warmup_ratio",
    "weight_decay",
    "label_smoothing",
    "seed",
    "gradient_accumulation_steps",
    "lr_scheduler",
    "num_cycles",
    "gradient_checkpointing",
    *_ARCHITECTURE,
    *_LORA_VARIANTS,
)
# Decoding settings a generating trial may search (the guide's temperature 0.7..1.2, or greedy/beam, and what
# bounds the cost of a generated answer: its length, the beams, the beams' length penalty).
DECODING_PARAMETERS = ("temperature", "top_p", "num_beams", "decoding", "max_new_tokens", "length_penalty")
# Token budgets a trial may search, by their field name: each applies to the tasks whose `TaskSpec.sequence_fields`
# name it (`model.max_length` for classification, `generation.max_document_tokens` for the generating tasks).
BUDGET_PARAMETERS = {"max_length": "model", "max_document_tokens": "generation"}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def hyperparameter_help() -> dict[str, str]:
    """Each hyperparameter (`HYPERPARAMETERS`, the `finetune` options and MLproject parameters) with its help text,
    read from the `TrainingConfig` field that defines its name, type and default."""
    from dataclasses import fields

    helps = {f.name: f.metadata.get("help", "") for f in fields(TrainingConfig)}
    return {name: helps[name] for name in HYPERPARAMETERS}


@dataclass
class ModelConfig:
    source: str = field(
        metadata=_help("a model source name (see `mlops models`), a local path, runs:/<run_id>/pretrained (from `pretrain`), or a hub id")
    )
    max_length: int = field(default=64, metadata=_help("classification: tokens per input text; longer texts are cut (and counted)"))
    target_modules: list[str] | str | None = field(
        default=None,
        metadata=_help(f"LoRA target modules, or {ALL_LINEAR} (every linear layer but the output head); default per architecture"),
    )
    quantization: Literal["none", "nf4", "fp4", "int8"] = field(
        default="none",
        metadata=_help("base weights through bitsandbytes (QLoRA): none, nf4 or fp4 (4-bit, double quantisation), int8; causal LMs"),
    )
    head_modules: list[str] | None = field(
        default=None, metadata=_help("modules trained in full with the new head; default: the pooler where the model has one")
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if not 8 <= self.max_length <= 8192:
            errors.append(f"{path}.max_length: must be in [8, 8192], got {self.max_length}")
        if isinstance(self.target_modules, str) and self.target_modules != ALL_LINEAR:
            errors.append(f"{path}.target_modules: a list of module names or {ALL_LINEAR}, got {self.target_modules!r}")
        return errors


@dataclass
class EarlyStoppingConfig:
    """Stop a run when its validation metric stops improving, and keep the adapter of its best evaluation."""

    patience: int = field(default=1, metadata=_help("evaluations (epochs) without an improvement of min_delta before training stops"))
    min_delta: float = field(default=0.0, metadata=_help("the least change of the metric that counts as an improvement"))
    metric: str | None = field(
        default=None, metadata=_help("the eval_* metric watched (and whose train_* twin measures the gap); default: search.metric")
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.patience < 1:
            errors.append(f"{path}.patience: must be >= 1, got {self.patience}")
        if not (self.min_delta >= 0 and math.isfinite(self.min_delta)):
            errors.append(f"{path}.min_delta: must be >= 0, got {self.min_delta}")
        return errors


@dataclass
class TrainingConfig:
    learning_rate: float = field(default=3e-5, metadata=_help("peak learning rate of AdamW (the guide: 1e-5..5e-5)"))
    batch_size: int = field(default=16, metadata=_help("examples per device and step (the guide: 8..32)"))
    epochs: int = field(default=2, metadata=_help("passes over the training split; evaluated (and pruned) after each"))
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA scaling numerator (scale = alpha / r)"))
    lora_dropout: float = field(default=0.1, metadata=_help("dropout on the LoRA path"))
    warmup_ratio: float = field(default=0.06, metadata=_help("share of the steps with a linearly rising learning rate"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay (the guide: 0..0.1)"))
    label_smoothing: float = field(
        default=0.0, metadata=_help("share of the target probability spread over all labels (classification; the guide: 0..0.2)")
    )
    seed: int = field(default=42, metadata=_help("seeds data order, initialisation and dropout (logged with every run)"))
    loraplus_lr_ratio: float = field(
        default=16.0,
        metadata=_help("LoRA+ (Hayou et al. 2024): LoRA B matrices and the new task head learn at learning_rate x this"),
    )
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    logging_steps: int = field(default=10, metadata=_help("optimizer steps between logged train_loss/learning_rate points"))
    device: Literal["auto", "cpu", "cuda"] = field(default="auto", metadata=_help("where training runs; auto: CUDA when available"))
    memory_budget_gib: float | None = field(
        default=None,
        metadata=_help(
            "device memory a trial may use (GiB); `mlops plan` judges every corner against it, and a trial "
            "estimated beyond it is pruned before it starts; default: none (the GPU's memory in `mlops plan`)"
        ),
    )
    max_steps: int | None = field(default=None, metadata=_help("stop after this many optimizer steps (quick runs)"))
    deepspeed: str | dict[str, Any] | None = field(
        default=None, metadata=_help("DeepSpeed config: a JSON file (relative to the working directory) or a mapping; needs `deepspeed`")
    )
    lr_scheduler: Literal["linear", "cosine", "cosine_with_restarts"] = field(
        default="linear", metadata=_help("learning-rate schedule after warm-up: linear, cosine or cosine_with_restarts")
    )
    num_cycles: int = field(default=2, metadata=_help("cosine_with_restarts: cosine cycles over training (2: one restart)"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("recompute activations in the backward pass: less memory, slower"))
    adapter: Literal["lora", "prefix", "bottleneck"] = field(
        default="lora",
        metadata=_help("lora; prefix (PEFT prefix tuning, causal LMs); bottleneck (down/ReLU/up residual adapter after each FFN)"),
    )
    num_virtual_tokens: int = field(default=16, metadata=_help("prefix: virtual tokens prepended in every layer"))
    reduction_factor: int = field(default=16, metadata=_help("bottleneck: hidden size / bottleneck width"))
    ffn_gate: bool = field(default=False, metadata=_help("a learned element-wise sigmoid gate after each FFN, starting at identity"))
    freeze_ratio: float = field(
        default=0.0, metadata=_help("share of the bottom layers left without any trainable parameter (small data: freeze more, up to 0.8)")
    )
    prune_heads: float = field(
        default=0.0,
        metadata=_help("attention heads removed before training, least important first: a share in [0, 1) or a count (BERT-style models)"),
    )
    drop_layers: int = field(
        default=0,
        metadata=_help("the top transformer layers removed before training and serving (layer pruning): a count, 0 keeps all"),
    )
    use_dora: bool = field(default=False, metadata=_help("DoRA: LoRA on the direction, a learned magnitude per output (slower step)"))
    use_rslora: bool = field(default=False, metadata=_help("rsLoRA: scale the LoRA path by alpha / sqrt(r) instead of alpha / r"))
    lora_init: Literal["default", "gaussian", "pissa", "olora"] = field(
        default="default",
        metadata=_help("how LoRA A and B start: default (B zero), gaussian, pissa (principal singular vectors), olora (QR)"),
    )
    early_stopping: EarlyStoppingConfig | None = field(
        default=None,
        metadata=_help(
            "stop when validation stops improving and keep the best evaluation's adapter, e.g. {patience: 1}; "
            "also logs train_<metric> and generalization_gap; default: off (every epoch trains, the last adapter is kept)"
        ),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            errors.append(f"{path}.learning_rate: must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.freeze_ratio < 1.0:
            errors.append(f"{path}.freeze_ratio: must be in [0, 1) (the guide: 0 to 0.8), got {self.freeze_ratio}")
        elif self.freeze_ratio > 0 and self.adapter == "prefix":
            errors.append(
                f"{path}.freeze_ratio: adapter prefix puts virtual tokens in every layer, so none can stay frozen; "
                f"use freeze_ratio 0 or adapter lora/bottleneck, got {self.freeze_ratio}"
            )
        if self.gradient_checkpointing and self.adapter == "prefix":
            errors.append(
                f"{path}.gradient_checkpointing: fails with adapter prefix (a recomputed layer appends the prefix to its "
                "key/value cache again: PEFT's prefix cache no longer matches the attention mask); use adapter lora or bottleneck"
            )
        if self.drop_layers < 0:
            errors.append(f"{path}.drop_layers: must be >= 0 (a count of top layers removed), got {self.drop_layers}")
        if self.prune_heads < 0 or (self.prune_heads >= 1 and not float(self.prune_heads).is_integer()):
            errors.append(f"{path}.prune_heads: must be a share in [0, 1) or a whole number of heads, got {self.prune_heads}")
        for name in (
            "batch_size",
            "epochs",
            "lora_r",
            "lora_alpha",
            "gradient_accumulation_steps",
            "logging_steps",
            "num_cycles",
            "num_virtual_tokens",
            "reduction_factor",
        ):
            if getattr(self, name) < 1:
                errors.append(f"{path}.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("lora_dropout", "warmup_ratio", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                errors.append(f"{path}.{name}: must be in [0, 1), got {getattr(self, name)}")
        if self.memory_budget_gib is not None and not self.memory_budget_gib > 0:
            errors.append(f"{path}.memory_budget_gib: must be > 0 GiB, got {self.memory_budget_gib}")
        if self.loraplus_lr_ratio < 1:
            errors.append(f"{path}.loraplus_lr_ratio: must be >= 1, got {self.loraplus_lr_ratio}")
        if self.weight_decay < 0:
            errors.append(f"{path}.weight_decay: must be >= 0, got {self.weight_decay}")
        if self.seed < 0:
            errors.append(f"{path}.seed: must be >= 0, got {self.seed}")
        if self.max_steps is not None and self.max_steps < 1:
            errors.append(f"{path}.max_steps: must be >= 1, got {self.max_steps}")
        errors += self._check_deepspeed(path)
        return errors

    def _check_deepspeed(self, path: str) -> list[str]:
        import importlib.util
        from pathlib import Path

        if self.deepspeed is None:
            return []
        errors = []
        if isinstance(self.deepspeed, str) and not Path(self.deepspeed).is_file():
            errors.append(f"{path}.deepspeed: file not found: {self.deepspeed}")
        if isinstance(self.deepspeed, dict) and not self.deepspeed:
            errors.append(f"{path}.deepspeed: an empty mapping; give a DeepSpeed config or leave the key out")
        if importlib.util.find_spec("deepspeed") is None:
            errors.append(f"{path}.deepspeed: needs the deepspeed package (pip install deepspeed, on a machine with CUDA)")
        return errors


DECODINGS = ("greedy", "sample", "beam")
MAX_TEMPERATURE = 5.0
MAX_LENGTH_PENALTY = 10.0  # |exponent| on a beam's length; > 0 favours longer beams, < 0 shorter ones


def decoding_errors(path: str, settings: Any, *, check_choice: bool = True) -> list[str]:
    """The one check of decoding settings: the config's `generation` section, a trial's suggestion and the settings
    generation runs with (`DecodingSettings`) are all held to it (`settings`: any object with their fields). With
    `check_choice` False, `decoding` is not checked (a config's: checked as it is built)."""
    decoding, temperature, top_p = settings.decoding, settings.temperature, settings.top_p
    num_beams, max_new_tokens, length_penalty = settings.num_beams, settings.max_new_tokens, settings.length_penalty
    errors = []
    if check_choice and decoding not in DECODINGS:
        errors.append(f"{path}.decoding: must be one of {', '.join(DECODINGS)}, got {decoding!r}")
    if not 0.0 < temperature <= MAX_TEMPERATURE:
        errors.append(f"{path}.temperature: must be in (0, {MAX_TEMPERATURE:g}], got {temperature}")
    if not 0.0 < top_p <= 1.0:
        errors.append(f"{path}.top_p: must be in (0, 1], got {top_p}")
    for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens)):
        if value < 1:
            errors.append(f"{path}.{name}: must be >= 1, got {value}")
    if not -MAX_LENGTH_PENALTY <= length_penalty <= MAX_LENGTH_PENALTY:
        errors.append(f"{path}.length_penalty: must be in [-{MAX_LENGTH_PENALTY:g}, {MAX_LENGTH_PENALTY:g}], got {length_penalty}")
    return errors


@dataclass
class GenerationConfig:
    """Summarisation: prompt, truncation budgets and decoding (used for evaluation and serving)."""

    template: str | None = field(
        default=None, metadata=_help("prompt with a {document} placeholder; default: the tokenizer's chat template, else 'Summarize ...'")
    )
    max_document_tokens: int = field(
        default=256, metadata=_help("tokens of a document kept in the prompt; longer ones are cut (and counted)")
    )
    max_summary_tokens: int = field(
        default=64, metadata=_help("tokens of a reference summary trained on; longer ones are cut (and counted)")
    )
    max_new_tokens: int = field(default=48, metadata=_help("tokens generated per summary at evaluation and serving"))
    decoding: Literal["greedy", "sample", "beam"] = field(
        default="greedy", metadata=_help("how summaries are generated; sampling is seeded")
    )
    temperature: float = field(default=1.0, metadata=_help("sampling temperature (decoding: sample); the guide searches 0.7..1.2"))
    top_p: float = field(
        default=1.0, metadata=_help("nucleus sampling: the smallest set of tokens with this probability (decoding: sample)")
    )
    num_beams: int = field(default=4, metadata=_help("beams searched (decoding: beam)"))
    length_penalty: float = field(
        default=1.0, metadata=_help("beam search: a beam's score is its log-likelihood / length ** this (> 0 longer, < 0 shorter answers)")
    )
    batch_size: int = field(default=8, metadata=_help("prompts generated together (left padding, KV cache)"))
    eval_subset: int = field(default=16, metadata=_help("validation examples scored at each evaluation during training (pruning)"))
    eval_examples: int | None = field(default=None, metadata=_help("validation/test examples scored at the end; default: all"))
    table_rows: int = field(default=20, metadata=_help("test examples logged in the predictions table"))
    packing: bool = field(default=False, metadata=_help("pack training examples into rows (no attention or labels across examples)"))
    group_by_length: bool = field(default=False, metadata=_help("batch examples of similar length together"))

    def check(self, path: str) -> list[str]:
        errors = []
        if self.template is not None and "{document}" not in self.template:
            errors.append(f"{path}.template: must contain the placeholder {{document}}")
        errors += decoding_errors(path, self, check_choice=False)  # the decoding choice: checked once, as the config is built
        for name in ("max_document_tokens", "max_summary_tokens", "batch_size", "eval_subset", "table_rows"):
            if getattr(self, name) < 1:
                errors.append(f"{path}.{name}: must be >= 1, got {getattr(self, name)}")
        if self.eval_examples is not None and self.eval_examples < 1:
            errors.append(f"{path}.eval_examples: must be >= 1, got {self.eval_examples}")
        return errors
