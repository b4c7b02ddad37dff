"""Synonym replacement: content words replaced by synonyms, WordNet's in whitespace words for English (and other
languages written with spaces), Cilin's in jieba's words for Chinese."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlops.data.augment._base import Augmenter, register_augmenter
from mlops.data.augment._language import Lexicon, lexicon_for
from mlops.data.text import TextLanguage, text_language

if TYPE_CHECKING:
    from mlops.config import AugmentConfig


class SynonymReplacement(Augmenter):
    """Each content word is replaced by a random synonym with probability `p`, at most `max_replacements`
    times per text (in a random order of the words, so the cap favours no part of the text)."""

    name = "synonym"

    def __init__(self, p: float, max_replacements: int) -> None:
        self.p = p
        self.max_replacements = max_replacements
        self.lexicon: Lexicon | None = None

    def ready_for(self, language: TextLanguage) -> None:
        self.lexicon = lexicon_for(self.name, language)

    @classmethod
    def from_config(cls, config: AugmentConfig) -> SynonymReplacement:
        return cls(config.synonym_p, config.max_replacements)

    def augment(self, texts: Sequence[str], protected: Sequence[frozenset[str]], rng: random.Random) -> list[str]:
        if self.lexicon is None:
            self.ready_for(text_language(texts))
        return [self._one(text, keep, rng) for text, keep in zip(texts, protected, strict=True)]

    def _one(self, text: str, keep: frozenset[str], rng: random.Random) -> str:
        if self.lexicon is None:
            raise RuntimeError("ready_for was not called")
        words, synonyms = self.lexicon.words(text, keep), self.lexicon.synonyms
        candidates = [i for i in words.content_words() if synonyms(words.tokens[i].core)]
        rng.shuffle(candidates)
        replaced = 0
        for i in candidates:
            if replaced == self.max_replacements:
                break
            if rng.random() < self.p:
                words.replace(i, rng.choice(synonyms(words.tokens[i].core)))
                replaced += 1
        return words.text()


register_augmenter(SynonymReplacement.name, SynonymReplacement.from_config)
