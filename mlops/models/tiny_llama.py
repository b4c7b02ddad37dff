"""tiny-random-llama: a 2-layer LLaMA built in code, with a byte-level BPE trained on the fraud demo texts."""

from __future__ import annotations

import csv
import functools
from typing import TYPE_CHECKING, Any

from mlops.config import demo_dataset_dir
from mlops.models._base import ModelSource, register_source, seeded
from mlops.tasks import spec_for

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase


class TinyRandomLlamaSource(ModelSource):
    """A 2-layer, 64-wide LLaMA built in code with fixed weights; a byte-level BPE trained on the demo data. For tests.

    The tokenizer has no chat template on purpose, so callers exercise their plain-prompt fallback.
    Its pad token is not its eos token: masking padding out of the labels must not mask the end of text.
    """

    name = "tiny-random-llama"
    description = "2-layer, 64-wide random LLaMA built in code; byte-level BPE from the demo data (tests, smoke runs)"
    weight_seed = 0
    vocab_size = 1024
    max_length = 512

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(_demo_bpe_json(self.vocab_size)),
            eos_token=_EOS_TOKEN,
            pad_token=_PAD_TOKEN,
            model_max_length=self.max_length,
        )

    # transformers' model classes for this architecture (a subclass with other blocks names its own)
    causal_lm_class = "LlamaForCausalLM"
    classifier_class = "LlamaForSequenceClassification"

    def load_causal_lm(self) -> PreTrainedModel:
        import transformers

        config = self._config()
        return seeded(lambda: getattr(transformers, self.causal_lm_class)(config), self.weight_seed)

    def load_classifier(self, num_labels: int) -> PreTrainedModel:
        import transformers

        config = self._config()
        config.num_labels = num_labels
        return seeded(lambda: getattr(transformers, self.classifier_class)(config), self.weight_seed)

    def model_config(self, task: str) -> PretrainedConfig:
        config = self._config()
        if spec_for(task).has_classifier_head:
            config.num_labels = 2
        return config

    def _config(self) -> PretrainedConfig:
        from transformers import LlamaConfig

        return LlamaConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
            **self._token_settings(),
        )

    def _token_settings(self) -> dict[str, Any]:
        """What a model config takes from the tokenizer: vocabulary size, positions, pad/eos ids (no BOS)."""
        tokenizer = self.load_tokenizer()
        return {
            "vocab_size": len(tokenizer),
            "max_position_embeddings": self.max_length,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": None,
            "eos_token_id": tokenizer.eos_token_id,
        }


_EOS_TOKEN = "<|endoftext|>"


_PAD_TOKEN = "<|pad|>"


@functools.lru_cache(maxsize=2)
def _demo_bpe_json(vocab_size: int) -> str:
    """A byte-level BPE trained on the fraud demo texts, as tokenizer JSON.

    Training takes about 0.1 s and is deterministic, so every process builds the same vocabulary
    and nothing needs to be stored; byte-level means any text round-trips exactly.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    with (demo_dataset_dir("fraud") / "train.csv").open(newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[_EOS_TOKEN, _PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer.to_str()


register_source(TinyRandomLlamaSource())
