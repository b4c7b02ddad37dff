"""A hub id (`org/name`): loaded with `from_pretrained` when the hub is reachable, else a named error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.errors import ModelSourceError
from mlops.models._base import ModelKind, PretrainedDirSource

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


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
                f"model.source: cannot load hub model '{self.location}' ({str(exc).splitlines()[0]}); download it where the "
                f"hub is reachable and set model.source to that directory; available offline: {self.listing}"
            ) from None

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return self._guard(super().load_tokenizer)  # type: ignore[no-any-return]

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        return self._guard(lambda: super(HubSource, self).load_classifier(num_labels))  # type: ignore[no-any-return]

    def load_causal_lm(self) -> PreTrainedModel:
        return self._guard(super().load_causal_lm)  # type: ignore[no-any-return]

    def load_quantized(self, kind: ModelKind, quantization_config: Any, device: str, num_labels: int = 2) -> PreTrainedModel:
        return self._guard(lambda: super(HubSource, self).load_quantized(kind, quantization_config, device, num_labels))  # type: ignore[no-any-return]

    def load_seq2seq(self) -> PreTrainedModel:
        return self._guard(super().load_seq2seq)  # type: ignore[no-any-return]
