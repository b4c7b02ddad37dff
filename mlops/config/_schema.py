"""The experiment config: one YAML names the task, data, model, training defaults, search space and registry."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args, get_origin, get_type_hints

from mlops.config._conditions import Condition, inapplicable, when_errors

# Structural keys beyond the LoRA settings: the adapter kind and its size, FFN gates, frozen layers, pruned heads.
_ARCHITECTURE = ("adapter", "num_virtual_tokens", "reduction_factor", "ffn_gate", "freeze_ratio", "prune_heads")
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
    "seed",
    "gradient_accumulation_steps",
    "lr_scheduler",
    "num_cycles",
    "gradient_checkpointing",
    *_ARCHITECTURE,
    *_LORA_VARIANTS,
)
# Decoding settings a summarisation trial may search (the guide's temperature 0.7..1.2, or greedy/beam).
DECODING_PARAMETERS = ("temperature", "top_p", "num_beams", "decoding")
TASKS = ("classification", "summarization")
# Training-data augmentation: the methods used when augmentation is searched but none are named (the offline
# ones; every method name comes from the augmenter registry, `mlops.data.augment`, which checks them), and the
# settings a search space may tune, as dotted names.
DEFAULT_AUGMENT_METHODS = ("synonym", "swap", "delete", "insert")
AUGMENT_PARAMETERS = ("augment.synonym_p", "augment.multiplier", "augment.max_replacements", "augment.eda_alpha")
# When a setting has any effect at all (the one table of these dependencies): a search draws it only then, and a
# trial run logs it only then. A search space's `when:` extends these, or replaces the test of the same setting.
BUILTIN_CONDITIONS: dict[str, Condition] = {
    "temperature": {"decoding": "sample"},
    "top_p": {"decoding": "sample"},
    "num_beams": {"decoding": "beam"},
    "num_cycles": {"lr_scheduler": "cosine_with_restarts"},
    "num_virtual_tokens": {"adapter": "prefix"},
    "reduction_factor": {"adapter": "bottleneck"},
    **{name: {"augment.multiplier": {"gt": 0}} for name in AUGMENT_PARAMETERS if name != "augment.multiplier"},
}

# Validation-split metrics the sweep can optimise, per task.
SEARCH_METRICS = {
    "classification": ("eval_f1", "eval_precision", "eval_recall", "eval_loss"),
    "summarization": ("eval_rougeL", "eval_rouge1", "eval_rouge2", "eval_key_term_recall", "eval_loss"),
}
# Metrics the run of a trained model logs, per task (what a promotion gate can judge): the validation metrics and
# their test-split counterparts (summarisation scores generated summaries on test, so it logs no test loss).
LOGGED_METRICS = {
    "classification": (*SEARCH_METRICS["classification"], "test_f1", "test_precision", "test_recall", "test_loss"),
    "summarization": (*SEARCH_METRICS["summarization"], "test_rougeL", "test_rouge1", "test_rouge2", "test_key_term_recall"),
}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def hyperparameter_help() -> dict[str, str]:
    """Each hyperparameter (`HYPERPARAMETERS`, the `finetune` options and MLproject parameters) with its help text,
    read from the `TrainingConfig` field that defines its name, type and default."""
    from dataclasses import fields

    helps = {f.name: f.metadata.get("help", "") for f in fields(TrainingConfig)}
    return {name: helps[name] for name in HYPERPARAMETERS}


@dataclass
class OnInvalid:
    """What the data contract does with rows that cannot be trained or judged on."""

    missing_target: Literal["error", "drop"] = field(
        default="error", metadata=_help("a row without a label or reference summary: refuse the dataset (error) or drop the row")
    )
    empty_input: Literal["error", "drop"] = field(default="drop", metadata=_help("a row whose text or document is empty"))
    cross_split_overlap: Literal["drop", "keep"] = field(
        default="drop", metadata=_help("a train row whose input (normalised) also occurs in validation or test: drop it from train")
    )


@dataclass
class DatasetConfig:
    path: str = field(
        metadata=_help(
            "CSV/JSONL/Parquet file, a folder of train/validation/test.csv, a `datasets` directory, `demo:NAME`, `hub:NAME`, "
            "or runs:/<run_id>/augmented (from `augment`)"
        )
    )
    format: Literal["auto", "csv", "jsonl", "parquet", "disk", "hub"] = "auto"
    text_column: str = field(default="text", metadata=_help("classification: the input text"))
    label_column: str = field(default="label", metadata=_help("classification: the class label"))
    document_column: str = field(default="document", metadata=_help("summarization: the text to summarise"))
    summary_column: str = field(default="summary", metadata=_help("summarization: the reference summary"))
    key_terms_column: str | None = field(
        default=None, metadata=_help("summarization: a JSON list of terms a summary must keep (for key_term_recall)")
    )
    splits: dict[str, str] = field(
        default_factory=dict, metadata=_help("given split files: train/validation/test -> path (overrides `path`)")
    )
    validation_fraction: float = 0.15
    test_fraction: float = 0.2
    max_samples: int | None = field(default=None, metadata=_help("cap on rows read, for quick runs"))
    on_invalid: OnInvalid = field(default_factory=OnInvalid)
    min_examples_per_class: int = field(default=5, metadata=_help("classification: fewest examples of each class in every split"))
    min_split_examples: int = field(default=20, metadata=_help("fewest examples in the validation and test splits"))
    text_tokenizer: Literal["auto", "words", "char", "jieba"] = field(
        default="auto",
        metadata=_help(
            "tokens for ROUGE, key-term recall and the report's lengths: words (whitespace), char (one per Chinese, Japanese "
            "or Thai character), jieba (Chinese words), auto (char when most letters are in such scripts, else words)"
        ),
    )

    def check(self, path: str) -> list[str]:
        errors = [
            f"{path}.{name}: must be >= 1, got {getattr(self, name)}"
            for name in ("min_examples_per_class", "min_split_examples")
            if getattr(self, name) < 1
        ]
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                errors.append(f"{path}.{name}: must be in (0, 0.5), got {value}")
        unknown = set(self.splits) - {"train", "validation", "test"}
        if unknown:
            errors.append(f"{path}.splits: unknown split(s) {sorted(unknown)}; use train, validation, test")
        if self.max_samples is not None and self.max_samples < 10:
            errors.append(f"{path}.max_samples: must be at least 10, got {self.max_samples}")
        return errors


@dataclass
class ModelConfig:
    source: str = field(
        metadata=_help("a model source name (see `mlops models`), a local path, runs:/<run_id>/pretrained (from `pretrain`), or a hub id")
    )
    max_length: int = 64
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
        if self.quantization not in QUANTIZATIONS:
            errors.append(f"{path}.quantization: must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}")
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
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay"))
    seed: int = field(default=42, metadata=_help("seeds data order, initialisation and dropout (logged with every run)"))
    loraplus_lr_ratio: float = field(
        default=16.0,
        metadata=_help("LoRA+ (Hayou et al. 2024): LoRA B matrices and the new task head learn at learning_rate x this"),
    )
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    logging_steps: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
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
    use_dora: bool = field(default=False, metadata=_help("DoRA: LoRA on the direction, a learned magnitude per output (slower step)"))
    use_rslora: bool = field(default=False, metadata=_help("rsLoRA: scale the LoRA path by alpha / sqrt(r) instead of alpha / r"))
    lora_init: Literal["default", "gaussian", "pissa", "olora"] = field(
        default="default",
        metadata=_help("how LoRA A and B start: default (B zero), gaussian, pissa (principal singular vectors), olora (QR)"),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            errors.append(f"{path}.learning_rate: must be > 0, got {self.learning_rate}")
        if self.adapter not in ("lora", "prefix", "bottleneck"):
            errors.append(f"{path}.adapter: must be one of lora, prefix, bottleneck, got {self.adapter!r}")
        if self.lora_init not in LORA_INITS:
            errors.append(f"{path}.lora_init: must be one of {', '.join(LORA_INITS)}, got {self.lora_init!r}")
        if self.lr_scheduler not in ("linear", "cosine", "cosine_with_restarts"):
            errors.append(f"{path}.lr_scheduler: must be one of linear, cosine, cosine_with_restarts, got {self.lr_scheduler!r}")
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
        for name in ("lora_dropout", "warmup_ratio"):
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


def decoding_errors(path: str, *, decoding: str, temperature: float, top_p: float, num_beams: int, max_new_tokens: int) -> list[str]:
    """The one check of decoding settings: the config's `generation` section, a trial's suggestion and the
    settings generation runs with (`DecodingSettings`) are all held to it."""
    errors = []
    if decoding not in DECODINGS:
        errors.append(f"{path}.decoding: must be one of {', '.join(DECODINGS)}, got {decoding!r}")
    if not 0.0 < temperature <= MAX_TEMPERATURE:
        errors.append(f"{path}.temperature: must be in (0, {MAX_TEMPERATURE:g}], got {temperature}")
    if not 0.0 < top_p <= 1.0:
        errors.append(f"{path}.top_p: must be in (0, 1], got {top_p}")
    for name, value in (("num_beams", num_beams), ("max_new_tokens", max_new_tokens)):
        if value < 1:
            errors.append(f"{path}.{name}: must be >= 1, got {value}")
    return errors


@dataclass
class GenerationConfig:
    """Summarisation: prompt, truncation budgets and decoding (used for evaluation and serving)."""

    template: str | None = field(
        default=None, metadata=_help("prompt with a {document} placeholder; default: the tokenizer's chat template, else 'Summarize ...'")
    )
    max_document_tokens: int = 256
    max_summary_tokens: int = 64
    max_new_tokens: int = 48
    decoding: Literal["greedy", "sample", "beam"] = "greedy"
    temperature: float = field(default=1.0, metadata=_help("sampling temperature (decoding: sample); the guide searches 0.7..1.2"))
    top_p: float = 1.0
    num_beams: int = 4
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
        errors += decoding_errors(
            path,
            decoding=self.decoding,
            temperature=self.temperature,
            top_p=self.top_p,
            num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens,
        )
        for name in ("max_document_tokens", "max_summary_tokens", "batch_size", "eval_subset", "table_rows"):
            if getattr(self, name) < 1:
                errors.append(f"{path}.{name}: must be >= 1, got {getattr(self, name)}")
        if self.eval_examples is not None and self.eval_examples < 1:
            errors.append(f"{path}.eval_examples: must be >= 1, got {self.eval_examples}")
        return errors


@dataclass
class PretrainConfig:
    """Continued pre-training (`pretrain`): causal-LM training on domain text mixed with general text."""

    domain_text: str = field(
        default="demo:legal", metadata=_help("a .txt file (passages separated by blank lines), JSONL/CSV with a text column, or demo:NAME")
    )
    general_text: str | None = field(default="demo:fraud", metadata=_help("general text mixed in, same forms; none: domain text only"))
    text_column: str = field(default="text", metadata=_help("the text column of JSONL/CSV inputs (demo data: its main text column)"))
    domain_fraction: float = field(default=0.5, metadata=_help("share of domain text in the training mix; the guide recommends >= 0.3"))
    heldout_fraction: float = field(default=0.1, metadata=_help("share of domain passages kept out for perplexity"))
    mode: Literal["lora", "full"] = "lora"
    block_size: int = field(default=128, metadata=_help("tokens per training block (passages are concatenated and cut)"))
    learning_rate: float = 1e-4
    batch_size: int = 4
    max_steps: int = 40
    seed: int = 42

    def check(self, path: str) -> list[str]:
        errors = []
        if not 0.0 < self.domain_fraction <= 1.0:
            errors.append(f"{path}.domain_fraction: must be in (0, 1], got {self.domain_fraction}")
        if not 0.0 < self.heldout_fraction < 0.5:
            errors.append(f"{path}.heldout_fraction: must be in (0, 0.5), got {self.heldout_fraction}")
        for name in ("block_size", "batch_size", "max_steps"):
            if getattr(self, name) < 1:
                errors.append(f"{path}.{name}: must be >= 1, got {getattr(self, name)}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            errors.append(f"{path}.learning_rate: must be > 0, got {self.learning_rate}")
        general_text = self.general()
        if general_text == self.domain_text:
            errors.append(
                f"{path}.general_text: the same text as {path}.domain_text ({general_text}); the held-out passages would be trained on"
            )
        if general_text is None and self.domain_fraction < 1.0:
            errors.append(
                f"{path}.general_text: none, so the mix is domain text only; set {path}.domain_fraction to 1.0, got {self.domain_fraction}"
            )
        return errors

    def general(self) -> str | None:
        """`general_text`, with the string "none" (all a CLI override or MLproject parameter can pass) as None."""
        if self.general_text is None or self.general_text.strip().lower() == "none":
            return None
        return self.general_text


@dataclass
class BackTranslationConfig:
    """Back-translation: source -> pivot language -> source, through two translation models."""

    forward: str | None = field(
        default=None, metadata=_help("model source translating into the pivot language (e.g. Helsinki-NLP/opus-mt-en-de)")
    )
    backward: str | None = field(
        default=None, metadata=_help("model source translating back from the pivot language (e.g. Helsinki-NLP/opus-mt-de-en)")
    )
    batch_size: int = field(default=16, metadata=_help("texts translated together"))
    max_new_tokens: int = 128
    num_beams: int = 1

    def check(self, path: str) -> list[str]:
        return [
            f"{path}.{name}: must be >= 1, got {getattr(self, name)}"
            for name in ("batch_size", "max_new_tokens", "num_beams")
            if getattr(self, name) < 1
        ]


@dataclass
class AugmentConfig:
    """Training-data augmentation: only the train split is augmented; validation and test are never touched."""

    methods: list[str] = field(
        default_factory=list,
        metadata=_help("synonym, swap, delete, insert, back_translation; empty: no augmentation (`augment` then uses the first four)"),
    )
    multiplier: int = field(default=1, metadata=_help("augmented copies made per training example (0: none)"))
    synonym_p: float = field(default=0.1, metadata=_help("probability that an eligible word is replaced by a WordNet synonym"))
    max_replacements: int = field(default=3, metadata=_help("synonym replacements per text, at most"))
    eda_alpha: float = field(default=0.1, metadata=_help("EDA's alpha: the share of a text's words swapped, deleted or inserted"))
    protected_words: list[str] = field(
        default_factory=list, metadata=_help("words never replaced, moved or deleted (label-bearing terms), besides entity-like tokens")
    )
    seed: int | None = field(default=None, metadata=_help("default: training.seed"))
    back_translation: BackTranslationConfig = field(default_factory=BackTranslationConfig)

    def check(self, path: str) -> list[str]:
        errors = []
        for name in ("synonym_p", "eda_alpha"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                errors.append(f"{path}.{name}: must be in [0, 1], got {value}")
        if self.multiplier < 0:
            errors.append(f"{path}.multiplier: must be >= 0, got {self.multiplier}")
        if self.max_replacements < 1:
            errors.append(f"{path}.max_replacements: must be >= 1, got {self.max_replacements}")
        if len(set(self.methods)) != len(self.methods):
            errors.append(f"{path}.methods: each method at most once, got {', '.join(self.methods)}")
        if self.seed is not None and self.seed < 0:
            errors.append(f"{path}.seed: must be >= 0, got {self.seed}")
        missing = [name for name in ("forward", "backward") if not getattr(self.back_translation, name)]
        if "back_translation" in self.methods and missing:
            where = f"{path}.back_translation" + (f".{missing[0]}" if len(missing) == 1 else "")
            errors.append(
                f"{where}: the back_translation method needs {' and '.join(missing)} translation model sources "
                "(e.g. forward: Helsinki-NLP/opus-mt-en-de, backward: Helsinki-NLP/opus-mt-de-en)"
            )
        return errors


@dataclass
class ParamSpace:
    """One searchable hyperparameter: float/int with bounds, or categorical choices."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None
    values: list[Any] | None = field(default=None, metadata=_help("the points the grid sampler visits"))
    when: dict[str, Any] | None = field(
        default=None,
        metadata=_help(
            "drawn only when these hold, e.g. {decoding: sample} or {augment.multiplier: {gt: 0}} (operators eq, ne, gt, ge, lt, "
            "le, in); adds to the built-in dependencies (BUILTIN_CONDITIONS), or replaces the test of the same setting"
        ),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.type == "categorical":
            if not self.choices:
                errors.append(f"{path}.choices: a categorical parameter needs a non-empty list")
        else:
            if self.low is None or self.high is None:
                errors.append(f"{path}: a {self.type} parameter needs low and high")
            elif self.low > self.high:
                errors.append(f"{path}: low ({self.low}) must not exceed high ({self.high})")
            elif self.log and self.low <= 0:
                errors.append(f"{path}.low: must be > 0 for a log-scale parameter, got {self.low}")
        return errors

    def grid_values(self) -> list[Any]:
        if self.values:
            return list(self.values)
        if self.type == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None  # guaranteed by check()
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1))
        return [self.low, self.high]


def conditions(space: Mapping[str, ParamSpace] | None = None) -> dict[str, Condition]:
    """When each setting applies: the built-in dependencies, with `space`'s `when:` added (a test of the same
    controlling setting replaces the built-in one)."""
    out: dict[str, Condition] = dict(BUILTIN_CONDITIONS)
    for name, p in (space or {}).items():
        if p.when:
            out[name] = {**out.get(name, {}), **p.when}
    return out


def setting_domains() -> dict[str, tuple[Any, ...] | None]:
    """The values each tunable setting (by its search-space name) can take: its choices, or None for a number."""
    sections: list[tuple[type, tuple[str, ...], str]] = [
        (TrainingConfig, HYPERPARAMETERS, ""),
        (GenerationConfig, DECODING_PARAMETERS, ""),
        (AugmentConfig, AUGMENT_PARAMETERS, "augment."),
    ]
    domains: dict[str, tuple[Any, ...] | None] = {}
    for cls, names, prefix in sections:
        hints = get_type_hints(cls)
        for name in names:
            tp = hints[name.removeprefix(prefix)]
            domains[name] = get_args(tp) if get_origin(tp) is Literal else (True, False) if tp is bool else None
    return domains


@dataclass
class SearchConfig:
    n_trials: int = 6
    sampler: Literal["tpe", "random", "grid", "cmaes", "qmc", "gp"] = "tpe"
    pruner: Literal["none", "median", "hyperband"] = field(
        default="none", metadata=_help("stop hopeless trials at an evaluation point (once per epoch)")
    )
    metric: str = field(default="eval_f1", metadata=_help("the child-run metric the study optimises"))
    direction: Literal["maximize", "minimize"] = "maximize"
    space: dict[str, ParamSpace] = field(default_factory=dict)
    timeout: float | None = field(default=None, metadata=_help("seconds after which a worker starts no new trial"))
    heartbeat_interval: int = field(
        default=60, metadata=_help("seconds between a running trial's heartbeats; a trial silent for twice that is failed and retried once")
    )
    on_oom: Literal["halve_batch", "prune"] = field(
        default="halve_batch",
        metadata=_help(
            "a trial out of device memory: retry it with half the per-device batch and twice the gradient accumulation, "
            "down to batch 1 (halve_batch), or prune it (prune)"
        ),
    )
    seeds_per_trial: int = field(
        default=1, metadata=_help("training seeds per trial (seed, seed+1, ...); Optuna is told their mean, pruners see its running value")
    )
    confirm_top_k: int = field(
        default=0, metadata=_help("after the search, re-train the k best trials with fresh seeds and register the best by that mean")
    )
    confirm_seeds: int = field(default=3, metadata=_help("fresh training seeds per confirmed trial"))
    keep_checkpoints: int = field(
        default=1, metadata=_help("a trial's newest checkpoints kept while it runs (one per evaluation point); 0 saves none")
    )
    checkpoint_dir: str | None = field(
        default=None,
        metadata=_help("where trials checkpoint: a folder (shared storage), `mlflow` (run artifacts); default beside the study"),
    )
    keep_finished_checkpoints: bool = field(
        default=False, metadata=_help("keep a trial's checkpoints after it ends, instead of deleting them")
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.n_trials < 1:
            errors.append(f"{path}.n_trials: must be >= 1, got {self.n_trials}")
        errors += self._check_seeds(path)
        if self.timeout is not None and self.timeout <= 0:
            errors.append(f"{path}.timeout: must be > 0 seconds, got {self.timeout}")
        if self.heartbeat_interval < 1:
            errors.append(f"{path}.heartbeat_interval: must be >= 1 second, got {self.heartbeat_interval}")
        if self.keep_checkpoints < 0:
            errors.append(f"{path}.keep_checkpoints: must be >= 0 (0 saves no checkpoint), got {self.keep_checkpoints}")
        if self.checkpoint_dir is not None and not self.checkpoint_dir.strip():
            errors.append(f"{path}.checkpoint_dir: give a folder or `mlflow`, or leave it out (beside the study)")
        for name in self.space:
            if name not in HYPERPARAMETERS + DECODING_PARAMETERS + AUGMENT_PARAMETERS:
                known = ", ".join(HYPERPARAMETERS + DECODING_PARAMETERS + AUGMENT_PARAMETERS)
                errors.append(f"{path}.space.{name}: not a tunable hyperparameter; use one of {known}")
        return errors

    def _check_seeds(self, path: str) -> list[str]:
        errors = []
        if self.seeds_per_trial < 1:
            errors.append(f"{path}.seeds_per_trial: must be >= 1, got {self.seeds_per_trial}")
        if self.confirm_top_k < 0:
            errors.append(f"{path}.confirm_top_k: must be >= 0 (0: no confirmation), got {self.confirm_top_k}")
        elif self.confirm_top_k > self.n_trials:
            errors.append(f"{path}.confirm_top_k: cannot confirm more trials than n_trials ({self.n_trials}), got {self.confirm_top_k}")
        if self.confirm_seeds < 1:
            errors.append(f"{path}.confirm_seeds: must be >= 1, got {self.confirm_seeds}")
        return errors


STAGES = ("data", "hyperparameters", "structure")
STRUCTURE_PARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", *_ARCHITECTURE)


def _default_fractions() -> dict[str, float]:
    return {"data": 0.7, "hyperparameters": 0.2, "structure": 0.1}  # the tuning guide's split


@dataclass
class PipelineConfig:
    """The staged practice run by `main`: data, then hyperparameters, then structure, then promote."""

    n_trials: int = field(default=12, metadata=_help("the total trial budget, split between the stages by `fractions`"))
    timeout: float | None = field(default=None, metadata=_help("total seconds, split between the stages like the trials"))
    fractions: dict[str, float] = field(default_factory=_default_fractions)
    structure_space: dict[str, ParamSpace] = field(
        default_factory=dict, metadata=_help("structural choices searched with the best hyperparameters fixed; default: lora_r, lora_alpha")
    )
    data_space: dict[str, ParamSpace] = field(
        default_factory=dict,
        metadata=_help("augmentation settings searched first; default: augment.synonym_p 0..0.3, augment.multiplier 0..2"),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.n_trials < 2:
            errors.append(f"{path}.n_trials: must be >= 2 (one per searching stage), got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            errors.append(f"{path}.timeout: must be > 0 seconds, got {self.timeout}")
        if set(self.fractions) != set(STAGES):
            errors.append(f"{path}.fractions: needs exactly the stages {', '.join(STAGES)}, got {', '.join(self.fractions) or 'none'}")
        elif any(f < 0 for f in self.fractions.values()) or abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            errors.append(f"{path}.fractions: must be >= 0 and sum to 1, got {self.fractions}")
        elif self.fractions["hyperparameters"] + self.fractions["structure"] <= 0:
            errors.append(f"{path}.fractions: the hyperparameter and structure stages cannot both get 0")
        for name in self.structure_space:
            if name not in STRUCTURE_PARAMETERS:
                errors.append(f"{path}.structure_space.{name}: not a structural choice; use one of {', '.join(STRUCTURE_PARAMETERS)}")
        for name in self.data_space:
            if name not in AUGMENT_PARAMETERS:
                errors.append(f"{path}.data_space.{name}: not an augmentation setting; use one of {', '.join(AUGMENT_PARAMETERS)}")
        return errors


@dataclass
class RegistryConfig:
    model_name: str
    policy: str = field(metadata=_help("a policy name under registry/ or a path to a policy YAML"))


@dataclass
class ExperimentConfig:
    name: str
    task: Literal["classification", "summarization"]
    dataset: DatasetConfig
    model: ModelConfig
    registry: RegistryConfig
    experiment_name: str | None = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    source_file: str = field(default="", init=False, metadata=_help("set by the loader: where this config came from"))

    def check(self, path: str) -> list[str]:
        """The search metric must be one training produces, and every bound, choice and grid
        value of the search space must be a valid training value."""
        errors = []
        if self.search.metric not in SEARCH_METRICS[self.task]:
            errors.append(
                f"search.metric: '{self.search.metric}' is not produced by {self.task}; use one of {', '.join(SEARCH_METRICS[self.task])}"
            )
        if self.task != "summarization":
            decoding = [k for k in self.search.space if k in DECODING_PARAMETERS]
            errors += [f"search.space.{k}: a decoding setting; only summarization decodes" for k in decoding]
        spaces = {
            "search.space": self.search.space,
            "pipeline.structure_space": self.pipeline.structure_space,
            "pipeline.data_space": self.pipeline.data_space,
        }
        for path, space in spaces.items():
            errors += self._check_space(path, space)
            errors += when_errors(path, space, conditions(space), setting_domains())
        return errors

    def _check_space(self, path: str, spaces: dict[str, ParamSpace]) -> list[str]:
        errors = []
        for name, space in spaces.items():
            if name not in HYPERPARAMETERS + DECODING_PARAMETERS + AUGMENT_PARAMETERS:
                continue
            candidates: dict[str, Any] = {"low": space.low, "high": space.high}
            candidates.update({f"choices[{i}]": v for i, v in enumerate(space.choices or [])})
            candidates.update({f"values[{i}]": v for i, v in enumerate(space.values or [])})
            for where, value in candidates.items():
                if value is None:
                    continue
                section: Any = self.generation if name in DECODING_PARAMETERS else self.training
                key = name
                if name in AUGMENT_PARAMETERS:
                    section, key = self.augment, name.removeprefix("augment.")
                problems = replace(section, **{key: value}).check("")
                errors += [f"{path}.{name}.{where}: {p.split(': ', 1)[1]}" for p in problems if p.startswith(f".{key}:")]
        return errors

    def with_params(self, params: dict[str, Any], **sections: Any) -> ExperimentConfig:
        """This config with searched values applied: hyperparameters to `training`, decoding settings to
        `generation`, `augment.*` settings to `augment` (searched augmentation with no methods named uses
        the default ones); other `sections` (e.g. `search`) replaced as given. `source_file` is kept."""
        training = replace(self.training, **{k: v for k, v in params.items() if k in HYPERPARAMETERS})
        generation = replace(self.generation, **{k: v for k, v in params.items() if k in DECODING_PARAMETERS})
        augmented = {k.removeprefix("augment."): v for k, v in params.items() if k in AUGMENT_PARAMETERS}
        augment = replace(self.augment, **augmented)
        if augmented and not augment.methods:
            augment.methods = list(DEFAULT_AUGMENT_METHODS)
        sections.setdefault("augment", augment)
        updated = replace(self, training=training, generation=generation, **sections)
        updated.source_file = self.source_file  # not an init field: `replace` drops it
        return updated

    def tunable_values(self) -> dict[str, Any]:
        """Every setting a search space may name, by that name, with this config's value."""
        values = {name: getattr(self.training, name) for name in HYPERPARAMETERS}
        values |= {name: getattr(self.generation, name) for name in DECODING_PARAMETERS}
        values |= {name: getattr(self.augment, name.removeprefix("augment.")) for name in AUGMENT_PARAMETERS}
        return values

    def inapplicable(self, space: Mapping[str, ParamSpace] | None = None) -> set[str]:
        """The tunable settings that have no effect with this config's values: their built-in dependency, or the
        `when:` of `space`, fails (e.g. `temperature` with `decoding: greedy`)."""
        return inapplicable(conditions(space), self.tunable_values())

    @property
    def mlflow_experiment(self) -> str:
        return self.experiment_name or self.name
