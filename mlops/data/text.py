"""Text as the metrics and reports see it: the normalisation that spots near-duplicates, and the one tokenisation
layer behind ROUGE, key-term recall and the data report's lengths, which reads the script a dataset is written in.

Modes (`dataset.text_tokenizer`): `words` splits on whitespace (ROUGE then uses rouge-score's own tokenizer, so English
figures are those of rouge-score); `char` makes each character of a script written without spaces (Chinese, Japanese,
Thai) one token and keeps Latin words and numbers whole; `jieba` segments Chinese into words with jieba's shipped
dictionary; `auto` picks `char` for a dataset whose letters are mostly in such scripts, else `words`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops.errors import ConfigError

TEXT_TOKENIZERS = ("auto", "words", "char", "jieba")
# Han (with extensions and compatibility ideographs), kana, Thai: scripts written without spaces between words.
_NO_SPACE = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\U00020000-\U0002fa1f"
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")
_LETTER = re.compile(f"[^\\W\\d_]|[{_NO_SPACE}]")  # Thai vowel signs are marks, not letters, to str.isalpha
# One character of such a script, a number (1,000 / 2.5), or a run of other letters and digits.
_CHAR_TOKEN = re.compile(rf"[{_NO_SPACE}]|\d+(?:[.,]\d+)*|[^\W_{_NO_SPACE}]+")
AUTO_THRESHOLD = 0.3  # share of letters in scripts without spaces from which `auto` counts characters
_AUTO_SAMPLE = 2000  # texts read to decide `auto`


class Tokenizer(Protocol):
    """What `rouge_score.RougeScorer(tokenizer=...)` takes, and what every text metric here calls."""

    def tokenize(self, text: str) -> list[str]: ...


@dataclass(frozen=True)
class TextTokenizer:
    """A resolved mode (`words`, `char` or `jieba`) and its `tokenize`."""

    mode: str

    def tokenize(self, text: str) -> list[str]:
        if self.mode == "words":
            return text.split()
        text = unicodedata.normalize("NFKC", text).lower()
        if self.mode == "char":
            return _CHAR_TOKEN.findall(text)
        return [token for token in _jieba().lcut(text) if _CHAR_TOKEN.search(token)]  # no punctuation or spaces

    def length(self, text: str) -> int:
        """`text`'s length in this tokenizer's units."""
        return len(self.tokenize(text))


@functools.lru_cache(maxsize=1)
def _jieba() -> Any:
    try:
        import jieba
    except ImportError:
        raise ConfigError("jieba (Chinese word segmentation) is not installed: pip install jieba") from None

    jieba.setLogLevel(logging.WARNING)  # it announces building its prefix dictionary on stderr
    jieba.initialize()
    return jieba


def segment(text: str) -> list[str]:
    """`text` cut into words by jieba, as written: the pieces join back into `text`, spaces and punctuation included."""
    return list(_jieba().lcut(text))


def no_space_share(texts: Iterable[str]) -> float:
    """The share of letters (any script) that belong to scripts written without spaces; 0.0 for text with no letters."""
    letters = no_space = 0
    for text in texts:
        letters += len(_LETTER.findall(text))
        no_space += len(_NO_SPACE_CHAR.findall(text))
    return no_space / letters if letters else 0.0


def resolve_text_tokenizer(mode: str, texts: Iterable[str]) -> TextTokenizer:
    """The tokenizer for `mode`; `auto` reads `texts` (a dataset's training texts) to choose `char` or `words`."""
    if mode not in TEXT_TOKENIZERS:
        raise ValueError(f"text tokenizer: must be one of {', '.join(TEXT_TOKENIZERS)}, got {mode!r}")
    if mode != "auto":
        return TextTokenizer(mode)
    sample = [t for _, t in zip(range(_AUTO_SAMPLE), texts, strict=False)]
    return TextTokenizer("char" if no_space_share(sample) >= AUTO_THRESHOLD else "words")


_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_KANA = re.compile("[\u3040-\u30ff]")
_THAI = re.compile("[\u0e00-\u0e7f]")
_CODES = {"Chinese": "zh", "Japanese": "ja", "Thai": "th"}


@dataclass(frozen=True)
class TextLanguage:
    """What a set of texts is written in, as far as the script tells: `Chinese`, `Japanese`, `Thai`, or `spaced` (a
    language that puts spaces between words, English and the like), and the share of letters in each of the three."""

    name: str
    shares: dict[str, float]

    @property
    def code(self) -> str | None:
        """ISO 639-1 (zh, ja, th); None for a spaced language, which the script does not tell apart."""
        return _CODES.get(self.name)

    def describe(self, name: str = "") -> str:
        """E.g. `97 % of the training text is Chinese` (for `name`, by default the detected language)."""
        name = name or (self.name if self.name in self.shares else max(self.shares, key=lambda k: self.shares[k]))
        return f"{round(100 * self.shares[name])} % of the training text is {name}"


def text_language(texts: Iterable[str]) -> TextLanguage:
    """The language of `texts` by script: Japanese when kana make a tenth of the letters, else the script without
    spaces that holds most letters once such scripts hold `AUTO_THRESHOLD` of them, else `spaced`."""
    letters = han = kana = thai = 0
    for text in texts:
        letters += len(_LETTER.findall(text))
        han, kana, thai = han + len(_HAN.findall(text)), kana + len(_KANA.findall(text)), thai + len(_THAI.findall(text))
    total = max(letters, 1)
    japanese = kana / total >= 0.1
    shares = {"Chinese": 0.0 if japanese else han / total, "Japanese": (han + kana) / total if japanese else kana / total}
    shares["Thai"] = thai / total
    best = max(shares, key=lambda k: shares[k])
    return TextLanguage(best if sum(shares.values()) >= AUTO_THRESHOLD else "spaced", shares)


def tokenize(text: str, mode: str = "auto") -> list[str]:
    """`text` as tokens of `mode` (`auto`: decided from this text alone)."""
    return resolve_text_tokenizer(mode, [text]).tokenize(text)


def normalized(text: str) -> str:
    """Lowercase, punctuation stripped, whitespace collapsed: texts equal here count as near-duplicates."""
    return " ".join(re.sub(r"[^\w\s]|_", "", text.lower()).split())


def fingerprint(text: str) -> str:
    """A hash of the normalised text."""
    return hashlib.blake2b(normalized(text).encode("utf-8"), digest_size=16).hexdigest()
