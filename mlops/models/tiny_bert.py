"""tiny-random-bert: a 2-layer, 32-wide BERT classifier built in code, with MiniLM's vocabulary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.models._base import ModelSource, register_source, seeded
from mlops.models.minilm import MiniLMSource

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TinyRandomBertSource(ModelSource):
    """A 2-layer, 32-wide BERT built in code with fixed weights; MiniLM's vocabulary. For tests."""

    name = "tiny-random-bert"
    description = "2-layer, 32-wide random BERT built in code (tests, smoke runs)"
    weight_seed = 0

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return MiniLMSource().load_tokenizer()

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
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
        return seeded(lambda: BertForSequenceClassification(config), self.weight_seed)


register_source(TinyRandomBertSource())
