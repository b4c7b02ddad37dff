"""Back-translation: translate into a pivot language and back with two translation models (e.g. MarianMT
opus-mt-en-de and opus-mt-de-en), in batches, greedy or beam search, so the same input gives the same output."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops.data.augment._base import Augmenter, register_augmenter
from mlops.errors import ConfigError, ModelSourceError
from mlops.models import resolve_source

if TYPE_CHECKING:
    from mlops.config import AugmentConfig
    from mlops.data.text import TextLanguage

_OPUS_PAIR = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})\b")
NO_SPACE_CODES = {"zh": "Chinese", "ja": "Japanese", "jap": "Japanese", "th": "Thai"}


def load_translator(source_name: str, field: str) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode on the best device) for a model source; errors name the config `field`."""
    try:
        return _load_translator(source_name)
    except ModelSourceError as exc:
        raise ModelSourceError(f"{field}: {exc}") from None
    except ValueError as exc:  # transformers: a config that no seq2seq class accepts
        raise ModelSourceError(f"{field}: '{source_name}' is not a translation model ({str(exc).splitlines()[0]})") from None


@functools.lru_cache(maxsize=4)
def _load_translator(source_name: str) -> tuple[Any, Any]:
    """Loaded once per process (a sweep's trials share it)."""
    import torch

    source = resolve_source(source_name)
    tokenizer, model = source.load_tokenizer(), source.load_seq2seq()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return tokenizer, model.to(device).eval()  # type: ignore[arg-type]  # transformers wraps `to`, hiding its signature


class BackTranslation(Augmenter):
    """Source -> pivot -> source through `forward` and `backward`, `batch_size` texts per `generate` call."""

    name = "back_translation"

    def __init__(self, forward: str, backward: str, batch_size: int = 16, max_new_tokens: int = 128, num_beams: int = 1) -> None:
        self.forward_name = forward
        self.forward = load_translator(forward, "augment.back_translation.forward")
        self.backward = load_translator(backward, "augment.back_translation.backward")
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams

    @classmethod
    def from_config(cls, config: AugmentConfig) -> BackTranslation:
        bt = config.back_translation
        if not bt.forward or not bt.backward:
            raise ConfigError(
                "augment.back_translation: the back_translation method needs forward and backward translation model sources "
                "(e.g. Helsinki-NLP/opus-mt-en-de and Helsinki-NLP/opus-mt-de-en)"
            )
        return cls(bt.forward, bt.backward, bt.batch_size, bt.max_new_tokens, bt.num_beams)

    def ready_for(self, language: TextLanguage) -> None:
        """A model named like opus-mt-<from>-<to> must translate from the data's language (a spaced language is taken
        to be any but Chinese, Japanese or Thai); a model named otherwise is taken at its word."""
        match = _OPUS_PAIR.search(self.forward_name.lower())
        if match is None:
            return
        source = match.group(1)
        if language.code != source and (language.code is not None or source in NO_SPACE_CODES):
            name = NO_SPACE_CODES.get(source) or language.name
            raise ConfigError(f"{self.name}: {self.forward_name} translates from {source}; {language.describe(name)}")

    def augment(self, texts: Sequence[str], protected: Sequence[frozenset[str]], rng: random.Random) -> list[str]:
        """Greedy (or beam) decoding draws nothing from `rng`; the protected words are checked by the caller,
        since a translation cannot be told which words to keep."""
        return self.translate(self.translate(list(texts), self.forward), self.backward)

    def translate(self, texts: list[str], translator: tuple[Any, Any]) -> list[str]:
        import torch

        tokenizer, model = translator
        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True, truncation=True)
            batch = {k: v.to(model.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            with torch.no_grad():
                generated = model.generate(**batch, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams, do_sample=False)
            out += [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        return out


register_augmenter(BackTranslation.name, BackTranslation.from_config)
