"""Evaluation metrics behind one small interface; names are the stable strings logged to MLflow."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


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
