"""Cheap baselines on the same splits, so the UI shows what fine-tuning adds.

Classification: TF-IDF + logistic regression (character n-grams for text in scripts without spaces).
Summarisation: "lead", the document's first sentence, the classic extractive baseline.
"""

from __future__ import annotations

import re

from mlops.data import ClassificationData, SummarizationData, TaskData, text_tokenizer_of
from mlops.evaluate.metrics import classification_scores, key_term_recall, rouge
from mlops.tasks import resolve, spec_for

# A sentence ends at . ! ? before whitespace, or at a full-width 。！？ or ；(Chinese and Japanese put no space after them).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])\s*")


def baseline_metrics(task: str, data: TaskData, seed: int) -> dict[str, float]:
    """The baseline metrics of `task` (the baseline its spec names) on the validation and test splits."""
    scores: dict[str, float] = resolve(spec_for(task).baseline)(data, seed)
    return scores


def tfidf_baseline(data: TaskData, seed: int) -> dict[str, float]:
    """`baseline_test_f1` etc.: TF-IDF features and a logistic regression. Features are word 1-2-grams, or for
    text in scripts without spaces character 1-3-grams (a word pattern would make each run of characters one token)."""
    if not isinstance(data, ClassificationData):
        raise TypeError(f"the TF-IDF baseline needs classification data, got {type(data).__name__}")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if text_tokenizer_of(data).mode == "words":
        features = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    else:
        features = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    model = make_pipeline(features, LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(data.train.texts, data.train.labels)
    scores = {}
    for split in ("validation", "test"):
        predictions = model.predict(data.split(split).texts).tolist()
        scores.update(classification_scores(predictions, data.split(split).labels, f"baseline_{split}"))
    return scores


def lead(document: str) -> str:
    """The document's first sentence."""
    return _SENTENCE_END.split(document.strip(), maxsplit=1)[0]


def lead_baseline(data: TaskData, seed: int = 0) -> dict[str, float]:
    """`baseline_test_rougeL` etc.: the first sentence of each document as its summary (`seed` is unused: no draw)."""
    if not isinstance(data, SummarizationData):
        raise TypeError(f"the lead baseline needs summarization data, got {type(data).__name__}")

    tokenizer = text_tokenizer_of(data)
    scores: dict[str, float] = {}
    for split in ("validation", "test"):
        pairs = data.split(split)
        leads = [lead(d) for d in pairs.documents]
        rouge_scores, _ = rouge(leads, pairs.summaries, tokenizer)
        scores.update({f"baseline_{split}_{k}": v for k, v in rouge_scores.items()})
        if any(pairs.key_terms):
            scores[f"baseline_{split}_key_term_recall"] = key_term_recall(leads, pairs.key_terms, tokenizer)[0]
    return scores
