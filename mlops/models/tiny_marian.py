"""tiny-random-marian: a 2-layer MarianMT built in code, a stand-in translation model for back-translation tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.errors import ModelSourceError
from mlops.models._base import ModelSource, register_source, seeded
from mlops.models.tiny_llama import TinyRandomLlamaSource

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TinyRandomMarianSource(ModelSource):
    """A 2-layer, 64-wide MarianMT encoder-decoder built in code with fixed weights; tiny-random-llama's tokenizer.
    A stand-in translation model for testing back-translation: its output is noise, but it depends on the input."""

    name = "tiny-random-marian"
    description = "2-layer, 64-wide random MarianMT translation model built in code (tests of back-translation)"
    weight_seed = 0

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return TinyRandomLlamaSource().load_tokenizer()

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        raise ModelSourceError(f"model source '{self.name}' is a translation model; it cannot classify")

    def load_seq2seq(self) -> PreTrainedModel:
        from transformers import MarianConfig, MarianMTModel

        tokenizer = self.load_tokenizer()
        config = MarianConfig(
            vocab_size=len(tokenizer),
            d_model=64,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=128,
            decoder_ffn_dim=128,
            max_position_embeddings=TinyRandomLlamaSource.max_length,
            scale_embedding=False,
            init_std=0.5,  # at the usual 0.02 the positions drown the input and every text decodes alike
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
            forced_eos_token_id=tokenizer.eos_token_id,
        )
        return seeded(lambda: MarianMTModel(config), self.weight_seed)


register_source(TinyRandomMarianSource())
