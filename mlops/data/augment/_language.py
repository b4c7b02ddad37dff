"""What each word-level method uses for a language: how a text is cut into words (whitespace, or jieba for Chinese)
and where synonyms come from (WordNet for English, Cilin for Chinese). Other languages are refused, naming the share."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from mlops.data.augment._text import Words
from mlops.data.augment.cilin import chinese_synonyms, cilin
from mlops.data.augment.wordnet import synonyms, wordnet
from mlops.data.text import TextLanguage, segment
from mlops.errors import ConfigError, MlopsError


@dataclass(frozen=True)
class Lexicon:
    """How one language's texts become `Words`, and the synonyms of a word in it."""

    words: Callable[[str, Collection[str]], Words]
    synonyms: Callable[[str], tuple[str, ...]]


def words_for(method: str, language: TextLanguage) -> Callable[[str, Collection[str]], Words]:
    """Whitespace words for a spaced language, jieba's words for Chinese; `ConfigError` for any other."""
    if language.name == "spaced":
        return Words
    if language.name == "Chinese":
        _loaded(method, lambda: segment("词"))
        return Words.segmented
    raise ConfigError(f"{method}: words are split at spaces, or by jieba for Chinese; {language.describe()}")


def lexicon_for(method: str, language: TextLanguage) -> Lexicon:
    """Words and synonyms for `language`: WordNet for a spaced language, Cilin for Chinese; `ConfigError` otherwise."""
    if language.name not in ("spaced", "Chinese"):
        raise ConfigError(f"{method}: WordNet covers English and Cilin Chinese; {language.describe()}")
    words = words_for(method, language)
    if language.name == "Chinese":
        _loaded(method, cilin)
        return Lexicon(words, chinese_synonyms)
    wordnet()
    return Lexicon(words, synonyms)


def _loaded(method: str, load: Callable[[], object]) -> None:
    """Run `load`, naming the method in the one-line error of a missing package."""
    try:
        load()
    except MlopsError as exc:
        raise ConfigError(f"{method}: {exc}") from None
