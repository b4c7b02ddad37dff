"""EDA's three word-level operations besides synonym replacement (Wei & Zou 2019, "EDA: Easy Data Augmentation
Techniques for Boosting Performance on Text Classification Tasks"): random swap, deletion and insertion.

Each changes about `alpha` x (number of words) words, at least one; protected tokens are never moved or deleted.
Words are whitespace tokens, or for Chinese jieba's words.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from mlops.data.augment._base import Augmenter, register_augmenter
from mlops.data.augment._language import lexicon_for, words_for
from mlops.data.augment._text import Words
from mlops.data.text import text_language

if TYPE_CHECKING:
    from mlops.config import AugmentConfig
    from mlops.data.text import TextLanguage


class _WordOperation(Augmenter):
    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.words: Callable[[str, Collection[str]], Words] | None = None

    def ready_for(self, language: TextLanguage) -> None:
        self.words = words_for(self.name, language)

    @classmethod
    def from_config(cls, config: AugmentConfig) -> _WordOperation:
        return cls(config.eda_alpha)

    def augment(self, texts: Sequence[str], protected: Sequence[frozenset[str]], rng: random.Random) -> list[str]:
        if self.words is None:
            self.ready_for(text_language(texts))
        make = self.words or Words
        out = []
        for text, keep in zip(texts, protected, strict=True):
            words = make(text, keep)
            self.apply(words, rng)
            out.append(words.text())
        return out

    def changes(self, words: Words) -> int:
        return max(1, round(self.alpha * len(words)))

    @abstractmethod
    def apply(self, words: Words, rng: random.Random) -> None:
        """Edit `words` in place."""


class RandomSwap(_WordOperation):
    """Swap two random unprotected tokens, n times: the text keeps exactly its tokens, in another order."""

    name = "swap"

    def apply(self, words: Words, rng: random.Random) -> None:
        movable = words.movable()
        if len(movable) < 2:
            return
        for _ in range(self.changes(words)):
            i, j = rng.sample(movable, 2)
            words.swap(i, j)


class RandomDeletion(_WordOperation):
    """Delete each unprotected token with probability alpha (at least one, never every token of the text)."""

    name = "delete"

    def apply(self, words: Words, rng: random.Random) -> None:
        movable = words.movable()
        if not movable or len(words) < 2:
            return
        chosen = [i for i in movable if rng.random() < self.alpha] or [rng.choice(movable)]
        if len(chosen) == len(words):
            chosen.remove(rng.choice(chosen))
        for i in sorted(chosen, reverse=True):
            words.delete(i)


class RandomInsertion(_WordOperation):
    """Insert a synonym (WordNet's, or Cilin's for Chinese) of a random content word of the text at a random
    position, n times."""

    name = "insert"

    def __init__(self, alpha: float) -> None:
        super().__init__(alpha)
        self.synonyms: Callable[[str], tuple[str, ...]] = lambda word: ()

    def ready_for(self, language: TextLanguage) -> None:
        lexicon = lexicon_for(self.name, language)
        self.words, self.synonyms = lexicon.words, lexicon.synonyms

    def apply(self, words: Words, rng: random.Random) -> None:
        synonyms = self.synonyms
        sources = [words.tokens[i].core for i in words.content_words() if synonyms(words.tokens[i].core)]
        if not sources:
            return
        for _ in range(self.changes(words)):
            word = rng.choice(synonyms(rng.choice(sources)))
            words.insert(rng.choice(words.insertion_points()), word)


for _operation in (RandomSwap, RandomDeletion, RandomInsertion):
    register_augmenter(_operation.name, _operation.from_config)
