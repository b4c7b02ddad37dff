"""A model source that loads each base model once: later loads are deep copies of the pristine first load, with the
random number generators moved to where that load left them, so that a run on a reused base trains exactly as on
a fresh load. The trials of one sweep worker share their base this way."""

from __future__ import annotations

import copy
import hashlib
import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.models._base import ModelKind, ModelSource

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class _RngState:
    python: Any
    numpy: Any
    torch: Any
    cuda: list[Any] | None

    @classmethod
    def now(cls) -> _RngState:
        import numpy as np
        import torch

        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return cls(random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda)

    def restore(self) -> None:
        import numpy as np
        import torch

        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)

    def digest(self) -> str:
        cuda = [state.numpy().tobytes() for state in self.cuda or []]
        payload = pickle.dumps((self.python, self.numpy, self.torch.numpy().tobytes(), cuda))
        return hashlib.sha256(payload).hexdigest()


@dataclass
class _Base:
    pristine: PreTrainedModel  # never handed out: each load gets a deep copy
    rng_after: _RngState


class ReusedBaseSource(ModelSource):
    """`inner`, with its classifier and causal-LM bases loaded once and copied on each later load.

    A load is reused when it is asked for the same model with the random number generators in the same state as the
    first one (a fresh load under a different seed would differ, e.g. in a new head); the copy is independent, so a
    run may prune, freeze or adapt it freely. Quantised bases are loaded fresh each time: bitsandbytes' weights are
    placed on their device at load and cannot be copied safely. The pristine copies live on the CPU for as long as
    this source does.
    """

    def __init__(self, inner: ModelSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.description = inner.description
        self._bases: dict[tuple[Any, ...], _Base] = {}
        self.fresh_loads = 0

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return self.inner.load_tokenizer()

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        return self._reused(("classifier", num_labels), lambda: self.inner.load_classifier(num_labels))

    def load_causal_lm(self) -> PreTrainedModel:
        return self._reused(("causal_lm",), self.inner.load_causal_lm)

    def load_quantized(self, kind: ModelKind, quantization_config: Any, device: str, num_labels: int = 2) -> PreTrainedModel:
        self.fresh_loads += 1
        return self.inner.load_quantized(kind, quantization_config, device, num_labels)

    def model_config(self, task: str) -> PretrainedConfig:
        return self.inner.model_config(task)

    def load_seq2seq(self) -> PreTrainedModel:
        return self.inner.load_seq2seq()

    def lineage(self) -> dict[str, str]:
        return self.inner.lineage()

    def _reused(self, kind: tuple[Any, ...], load: Callable[[], PreTrainedModel]) -> PreTrainedModel:
        key = (*kind, _RngState.now().digest())
        base = self._bases.get(key)
        if base is None:
            self.fresh_loads += 1
            model = load()
            base = self._bases[key] = _Base(model, _RngState.now())
        base.rng_after.restore()
        return copy.deepcopy(base.pristine)
