"""The data sections of the experiment config: the dataset and its contract, augmentation, continued pre-training."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from mlops.config._training import _help

# Training-data augmentation: the methods used when augmentation is searched but none are named (the offline
# ones; every method name comes from the augmenter registry, `mlops.data.augment`, which checks them), and the
# settings a search space may tune, as dotted names.
DEFAULT_AUGMENT_METHODS = ("synonym", "swap", "delete", "insert")
AUGMENT_PARAMETERS = ("augment.synonym_p", "augment.multiplier", "augment.max_replacements", "augment.eda_alpha")


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
    format: Literal["auto", "csv", "jsonl", "parquet", "disk", "hub"] = field(
        default="auto", metadata=_help("how `path` is read; auto: from its prefix or suffix (disk: a `datasets` directory)")
    )
    text_column: str = field(default="text", metadata=_help("classification: the input text"))
    label_column: str = field(default="label", metadata=_help("classification: the class label"))
    document_column: str = field(default="document", metadata=_help("summarization: the text to summarise"))
    summary_column: str = field(default="summary", metadata=_help("summarization: the reference summary"))
    key_terms_column: str | None = field(
        default=None, metadata=_help("summarization: a JSON list of terms a summary must keep (for key_term_recall)")
    )
    messages_column: str | None = field(
        default=None, metadata=_help("instruction: a list of {role, content} turns (system, user, assistant); else prompt/response")
    )
    prompt_column: str = field(default="prompt", metadata=_help("instruction: the prompt, when messages_column is not set"))
    response_column: str = field(default="response", metadata=_help("instruction: the response to the prompt"))
    system_prompt: str | None = field(default=None, metadata=_help("instruction: a system turn put before each prompt/response pair"))
    splits: dict[str, str] = field(
        default_factory=dict, metadata=_help("given split files: train/validation/test -> path (overrides `path`)")
    )
    validation_fraction: float = field(default=0.15, metadata=_help("share of the rows split off for validation when no splits are given"))
    test_fraction: float = field(default=0.2, metadata=_help("share of the rows split off for the held-out test when no splits are given"))
    max_samples: int | None = field(default=None, metadata=_help("cap on rows read, for quick runs"))
    on_invalid: OnInvalid = field(default_factory=OnInvalid, metadata=_help("what the data contract does with rows it cannot use"))
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
class PretrainConfig:
    """Continued pre-training (`pretrain`): causal-LM training on domain text mixed with general text."""

    domain_text: str = field(
        default="demo:legal", metadata=_help("a .txt file (passages separated by blank lines), JSONL/CSV with a text column, or demo:NAME")
    )
    general_text: str | None = field(default="demo:fraud", metadata=_help("general text mixed in, same forms; none: domain text only"))
    text_column: str = field(default="text", metadata=_help("the text column of JSONL/CSV inputs (demo data: its main text column)"))
    domain_fraction: float = field(default=0.5, metadata=_help("share of domain text in the training mix; the guide recommends >= 0.3"))
    heldout_fraction: float = field(default=0.1, metadata=_help("share of domain passages kept out for perplexity"))
    mode: Literal["lora", "full"] = field(default="lora", metadata=_help("lora (merged into the weights at the end) or full fine-tuning"))
    block_size: int = field(default=128, metadata=_help("tokens per training block (passages are concatenated and cut)"))
    learning_rate: float = field(default=1e-4, metadata=_help("peak learning rate of AdamW"))
    batch_size: int = field(default=4, metadata=_help("blocks per step"))
    max_steps: int = field(default=40, metadata=_help("optimizer steps"))
    seed: int = field(default=42, metadata=_help("seeds the mix, the held-out split and training"))

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
    max_new_tokens: int = field(default=128, metadata=_help("tokens generated per translation"))
    num_beams: int = field(default=1, metadata=_help("beams searched per translation (1: greedy)"))

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
    back_translation: BackTranslationConfig = field(
        default_factory=BackTranslationConfig, metadata=_help("the two translation models of back_translation")
    )

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
