"""Evaluation metrics as plain functions (no MLflow, no Optuna): macro F1, precision and recall behind one small
interface, a confusion matrix, ROUGE and key-term recall. Names are the stable strings logged to MLflow."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from mlops.data.text import TextTokenizer


class Metric(ABC):
    """A score computed from predictions and references; higher is better unless stated."""

    name: str

    @abstractmethod
    def compute(self, predictions: Sequence[int], references: Sequence[int]) -> float:
        """Return the score for one evaluation split."""


class MacroF1(Metric):
    name = "f1"

    def compute(self, predictions: Sequence[int], references: Sequence[int]) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(references, predictions, average="macro", zero_division=0))


class MacroPrecision(Metric):
    name = "precision"

    def compute(self, predictions: Sequence[int], references: Sequence[int]) -> float:
        from sklearn.metrics import precision_score

        return float(precision_score(references, predictions, average="macro", zero_division=0))


class MacroRecall(Metric):
    name = "recall"

    def compute(self, predictions: Sequence[int], references: Sequence[int]) -> float:
        from sklearn.metrics import recall_score

        return float(recall_score(references, predictions, average="macro", zero_division=0))


CLASSIFICATION_METRICS: tuple[Metric, ...] = (MacroF1(), MacroPrecision(), MacroRecall())


def classification_scores(predictions: Sequence[int], references: Sequence[int], prefix: str) -> dict[str, float]:
    """`{prefix}_f1`, `{prefix}_precision`, `{prefix}_recall`: macro averages from scikit-learn."""
    return {f"{prefix}_{m.name}": m.compute(predictions, references) for m in CLASSIFICATION_METRICS}


def confusion(predictions: Sequence[int], references: Sequence[int], label_names: list[str]) -> dict[str, object]:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(references, predictions, labels=list(range(len(label_names))))
    return {"labels": label_names, "rows_are": "true", "columns_are": "predicted", "matrix": matrix.tolist()}


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(
    predictions: Sequence[str], references: Sequence[str], tokenizer: TextTokenizer | None = None
) -> tuple[dict[str, float], list[float]]:
    """Mean ROUGE-1/2/L F-measures and the per-example ROUGE-L F-measures. Tokens come from `tokenizer`; with none or
    a `words` one, from rouge-score's own tokenizer with Porter stemming (it keeps only [a-z0-9]: Latin scripts alone)."""
    from rouge_score import rouge_scorer

    _check_paired(predictions, references, "references")
    if tokenizer is None or tokenizer.mode == "words":
        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    else:
        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=tokenizer)
    scores = [scorer.score(reference, prediction) for prediction, reference in zip(predictions, references, strict=True)]
    means = {name: sum(s[name].fmeasure for s in scores) / len(scores) for name in ROUGE_TYPES}
    return means, [float(s["rougeL"].fmeasure) for s in scores]


def _check_paired(predictions: Sequence[Any], references: Sequence[Any], name: str) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"predictions and {name} differ in length: {len(predictions)} != {len(references)}")
    if not predictions:
        raise ValueError("no predictions to score")


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def _found(prediction: str, terms: list[str], tokenizer: TextTokenizer | None) -> int:
    """How many of `terms` occur in `prediction`."""
    if tokenizer is None or tokenizer.mode == "words":
        text = _normalised(prediction)
        return sum(_normalised(term) in text for term in terms)
    tokens = tokenizer.tokenize(prediction)
    found = 0
    for term in terms:
        wanted = tokenizer.tokenize(term)
        found += any(tokens[i : i + len(wanted)] == wanted for i in range(len(tokens) - len(wanted) + 1))
    return found


def key_term_recall(
    predictions: Sequence[str], terms: Sequence[Sequence[str]], tokenizer: TextTokenizer | None = None
) -> tuple[float, list[float]]:
    """The share of each reference's key terms found in its prediction: case- and whitespace-insensitive substrings,
    or with a `char` or `jieba` tokenizer, the term's tokens in a row among the prediction's (so 30日 is not in 130日).

    Returns the mean over examples that have key terms and the per-example shares; an example without key terms
    scores NaN and is left out of the mean (NaN too if no example has any).
    """
    _check_paired(predictions, terms, "terms")
    per_example: list[float] = []
    for prediction, example_terms in zip(predictions, terms, strict=True):
        wanted = [term for term in example_terms if term.strip()]
        per_example.append(_found(prediction, wanted, tokenizer) / len(wanted) if wanted else math.nan)
    scored = [value for value in per_example if not math.isnan(value)]
    return (sum(scored) / len(scored) if scored else math.nan), per_example
