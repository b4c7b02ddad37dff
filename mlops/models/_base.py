"""The model-source interface and its registry, the directory and cache helpers every source shares.

A new named source is one module with a `ModelSource` subclass and one `register_source(...)` line, imported by
`mlops.models`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlops.errors import ModelSourceError
from mlops.tasks import spec_for

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# What a source loads: a decoder-only LM with its head, or a sequence classifier with a new head.
ModelKind = Literal["causal_lm", "classifier"]


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

    def load_causal_lm(self) -> PreTrainedModel:
        """Return a decoder-only language model with its LM head (for generation tasks)."""
        raise ModelSourceError(f"model.source '{self.name}' has no causal-LM weights; it can only be used for classification")

    def load_quantized(self, kind: ModelKind, quantization_config: Any, device: str, num_labels: int = 2) -> PreTrainedModel:
        """`load_causal_lm` or `load_classifier` (`kind`) with bitsandbytes' `quantization_config` applied on `device`.
        bitsandbytes quantises in `from_pretrained`, so a model built in code goes through a scratch directory;
        directory sources load directly."""
        built = self.load_causal_lm() if kind == "causal_lm" else self.load_classifier(num_labels)
        with tempfile.TemporaryDirectory(prefix="mlops-quantize-") as scratch:
            built.save_pretrained(scratch)
            del built
            return _from_pretrained(kind, scratch, quantization_config, device, num_labels)

    def load_seq2seq(self) -> PreTrainedModel:
        """Return an encoder-decoder model with its LM head (a translation model, for back-translation)."""
        raise ModelSourceError(f"model source '{self.name}' is not a sequence-to-sequence (translation) model")

    def model_config(self, task: str) -> PretrainedConfig:
        """The model's config, for its architecture figures; by default read from the model `task` trains."""
        model = self.load_classifier(2) if spec_for(task).has_classifier_head else self.load_causal_lm()
        config: PretrainedConfig = model.config
        return config

    def lineage(self) -> dict[str, str]:
        """Run tags naming where these weights came from, for runs that start from them; empty for a plain base model."""
        return {}


SOURCES: dict[str, ModelSource] = {}


def register_source(source: ModelSource) -> None:
    SOURCES[source.name] = source


def available_sources() -> dict[str, str]:
    return {name: src.description for name, src in sorted(SOURCES.items())}


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

    def load_causal_lm(self) -> PreTrainedModel:
        from transformers import AutoModelForCausalLM

        model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(self.path())
        return model

    def load_quantized(self, kind: ModelKind, quantization_config: Any, device: str, num_labels: int = 2) -> PreTrainedModel:
        return _from_pretrained(kind, self.path(), quantization_config, device, num_labels)

    def model_config(self, task: str) -> PretrainedConfig:
        from transformers import AutoConfig

        config: PretrainedConfig = AutoConfig.from_pretrained(self.path())
        return config

    def load_seq2seq(self) -> PreTrainedModel:
        from transformers import AutoModelForSeq2SeqLM

        model: PreTrainedModel = AutoModelForSeq2SeqLM.from_pretrained(self.path())
        return model


def _from_pretrained(kind: ModelKind, location: str, quantization_config: Any, device: str, num_labels: int) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if kind == "causal_lm":
        lm: PreTrainedModel = AutoModelForCausalLM.from_pretrained(location, quantization_config=quantization_config, device_map=device)
        return lm
    classifier: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
        location, num_labels=num_labels, quantization_config=quantization_config, device_map=device
    )
    return classifier


def seeded(build: Callable[[], PreTrainedModel], seed: int) -> PreTrainedModel:
    """Build a model under a fixed seed: the same weights every time, the caller's RNG untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def model_cache_dir() -> Path:
    """Where converted models are cached: `$MLOPS_CACHE`, else `$XDG_CACHE_HOME/mlops`, else `~/.cache/mlops`."""
    if os.environ.get("MLOPS_CACHE"):
        return Path(os.environ["MLOPS_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "mlops"
    return Path.home() / ".cache" / "mlops"


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Fill a staging directory beside `target`, then rename it to `target`.

    A killed writer leaves only a `.<name>.*.tmp` directory, never a half-written `target`.
    If another process published `target` first, its copy is kept and ours dropped.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        write(staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
