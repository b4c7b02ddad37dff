"""Words of a text, which of them every method must keep, and the normalised form used to spot near-duplicates."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from mlops.data.text import segment, text_language

# Digits (numbers, amounts, dates, codes), currency signs, e-mail addresses and URLs.
_ENTITY = re.compile(r"[0-9$€£¥₹@]|://|^www\.|\w\.[a-z]{2,}\b", re.IGNORECASE)
# A plain word inside optional punctuation: "(payment," -> "(", "payment", ",".
_WORD = re.compile(r"^([^\w]*)([^\W\d_]+(?:['’-][^\W\d_]+)*)([^\w]*)$")
_SENTENCE_END = (".", "!", "?")

# Function words: never replaced by synonyms (WordNet reads "it" as information technology, "in" as inch).
_FUNCTION_WORDS = """a about above after again against all am an and any are as at be because been before being below between both but by
    can could did do does doing down during each few for from further had has have having he her here hers herself him himself
    his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also may might must shall us via per within without upon"""
STOPWORDS = frozenset(_FUNCTION_WORDS.split())


def protected_words(words: Collection[str]) -> frozenset[str]:
    """Lowercase single words from configured terms; a multi-word term protects each of its words."""
    return frozenset(w.lower() for term in words for w in re.findall(r"[^\W_]+", term))


@dataclass
class Word:
    text: str  # as written, with any punctuation attached
    core: str  # the plain word inside it, "" when there is none (numbers, symbols, mixed tokens)
    protected: bool

    def with_core(self, core: str) -> Word:
        """This token with its word replaced, keeping the punctuation and a leading capital."""
        if self.core[:1].isupper():
            core = core[:1].upper() + core[1:]
        return Word(self.text.replace(self.core, core, 1), core, False)


class Words:
    """A text as tokens and the whitespace between them, so that edits leave the rest of the text as written.

    A token is protected when it is entity-like (digits, currency, e-mail, URL, a capitalised word
    mid-sentence or any word with an inner capital) or one of the `keep` words.
    """

    def __init__(self, text: str, keep: Collection[str] = ()) -> None:
        tokens = re.findall(r"\S+", text)
        self.gaps = re.split(r"\S+", text)  # len(tokens) + 1: before, between and after the tokens
        self.joiner = " "  # what separates an inserted word from its neighbours
        self.tokens: list[Word] = []
        for i, token in enumerate(tokens):
            match = _WORD.match(token)
            core = match.group(2) if match else ""
            sentence_start = i == 0 or tokens[i - 1].endswith(_SENTENCE_END)
            self.tokens.append(Word(token, core, _entity_like(token, core, sentence_start) or _kept(token, core, keep)))

    @classmethod
    def segmented(cls, text: str, keep: Collection[str] = ()) -> Words:
        """A Chinese text as jieba's words with nothing between them. Punctuation, numbers and every word that
        overlaps a `keep` term where it occurs in the text are protected."""
        words = cls("")
        tokens = [t for t in segment(text) if t]
        lowered, kept = text.lower(), [False] * len(text)
        for term in keep:
            for match in re.finditer(re.escape(term), lowered):
                kept[match.start() : match.end()] = [True] * len(term)
        start = 0
        for token in tokens:
            core = token if _WORD.fullmatch(token) and not token.isascii() else ""
            protected = not core or any(kept[start : start + len(token)])
            words.tokens.append(Word(token, core, protected))
            start += len(token)
        words.gaps, words.joiner = [""] * (len(tokens) + 1), ""
        return words

    def text(self) -> str:
        parts = [self.gaps[0]]
        for token, gap in zip(self.tokens, self.gaps[1:], strict=True):
            parts += [token.text, gap]
        return "".join(parts)

    def __len__(self) -> int:
        return len(self.tokens)

    def movable(self) -> list[int]:
        """Positions that may be swapped or deleted."""
        return [i for i, t in enumerate(self.tokens) if not t.protected]

    def content_words(self) -> list[int]:
        """Positions of unprotected plain words that are not function words: the ones synonyms may replace."""
        return [i for i, t in enumerate(self.tokens) if not t.protected and t.core and t.core.lower() not in STOPWORDS]

    def insertion_points(self) -> list[int]:
        """Positions a new word may go before (len(self) = at the end); never inside a run of protected tokens,
        so a protected phrase (a party's name, a key term) stays whole."""
        n = len(self.tokens)
        return [i for i in range(n + 1) if not (0 < i < n and self.tokens[i - 1].protected and self.tokens[i].protected)]

    def replace(self, i: int, core: str) -> None:
        self.tokens[i] = self.tokens[i].with_core(core)

    def swap(self, i: int, j: int) -> None:
        self.tokens[i], self.tokens[j] = self.tokens[j], self.tokens[i]

    def delete(self, i: int) -> None:
        del self.tokens[i]
        del self.gaps[i + 1 if i < len(self.tokens) else i]  # the gap after the token, or before the last one

    def insert(self, i: int, word: str) -> None:
        self.tokens.insert(i, Word(word, word, False))
        self.gaps.insert(i + 1 if i < len(self.tokens) - 1 else i, self.joiner)


def _entity_like(token: str, core: str, sentence_start: bool) -> bool:
    if _ENTITY.search(token):
        return True
    if not core:
        return False
    return any(c.isupper() for c in core[1:]) or (core[0].isupper() and not sentence_start)


def _kept(token: str, core: str, keep: Collection[str]) -> bool:
    return bool(keep) and (core or token).lower() in keep


def protected_tokens(text: str, keep: Collection[str] = ()) -> list[str]:
    """The protected tokens of `text` (jieba's words when it is Chinese), without surrounding punctuation: what must
    still be in any augmented copy."""
    words = Words.segmented(text, keep) if text_language([text]).name == "Chinese" else Words(text, keep)
    return [t.text.strip(".,;:!?()[]{}\"'“”‘’") for t in words.tokens if t.protected]
