"""Champion against challenger on the same test split: per-example scores and a paired bootstrap.

Training logs `per_example/test.json` on each run: the predictions and labels (classification, so F1 can be
recomputed on every resample: it is not a mean) or each example's score (summarisation), with the split's
digest and example ids. The bootstrap draws the same example indices for both models (paired) and gives a
percentile confidence interval for the difference challenger - champion.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.errors import RegistryError

if TYPE_CHECKING:
    import numpy as np

    from mlops.data import TaskData

PER_EXAMPLE_ARTIFACT = "per_example/test.json"
_CLASSIFICATION = ("test_f1", "test_precision", "test_recall")
_BLOCK = 256  # resamples evaluated at once: bounds memory at _BLOCK x examples counts


class SplitMismatch(RegistryError):
    """Champion and challenger were scored on different test examples, so they cannot be compared."""


@dataclass
class PerExampleScores:
    """One model's scores on each example of a split, in the split's order."""

    task: str
    digest: str
    ids: list[str]
    labels: list[int] = field(default_factory=list)  # classification
    predictions: list[int] = field(default_factory=list)  # classification
    label_names: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)  # summarisation: metric -> per-example score (NaN: unscored)

    def metrics(self) -> list[str]:
        return list(_CLASSIFICATION) if self.task == "classification" else list(self.values)

    def to_document(self) -> dict[str, Any]:
        values = {k: [None if math.isnan(v) else v for v in vs] for k, vs in self.values.items()}  # strict JSON has no NaN
        return {
            "split": "test",
            "task": self.task,
            "dataset_digest": self.digest,
            "ids": self.ids,
            "labels": self.labels,
            "predictions": self.predictions,
            "label_names": self.label_names,
            "values": values,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> PerExampleScores:
        values = {k: [math.nan if v is None else float(v) for v in vs] for k, vs in doc.get("values", {}).items()}
        return cls(
            doc["task"],
            doc["dataset_digest"],
            list(doc["ids"]),
            list(doc.get("labels", [])),
            list(doc.get("predictions", [])),
            list(doc.get("label_names", [])),
            values,
        )


def example_ids(texts: Sequence[str]) -> list[str]:
    """Short content hashes that identify each example (and its position) of a split."""
    return [hashlib.sha1(t.encode("utf-8")).hexdigest()[:12] for t in texts]


def split_digest(data: TaskData, split: str) -> str:
    """The digest MLflow records for this split as a dataset input (content only)."""
    from mlflow.data.digest_utils import compute_pandas_digest

    frame, _ = data.frame(split)
    return str(compute_pandas_digest(frame))


def classification_per_example(data: TaskData, predictions: Sequence[int]) -> dict[str, Any]:
    """The `per_example/test.json` document of a classifier: test labels, its predictions, digest and ids."""
    from mlops.data import ClassificationData

    if not isinstance(data, ClassificationData):
        raise TypeError("classification_per_example needs classification data")
    scores = PerExampleScores(
        "classification",
        split_digest(data, "test"),
        example_ids(data.test.texts),
        list(data.test.labels),
        [int(p) for p in predictions],
        list(data.label_names),
    )
    return scores.to_document()


def summarization_per_example(data: TaskData, values: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """The `per_example/test.json` document of a summariser: each scored test example's metrics (the first n examples)."""
    from mlops.data import SummarizationData

    if not isinstance(data, SummarizationData):
        raise TypeError("summarization_per_example needs summarization data")
    n = len(next(iter(values.values())))
    scores = PerExampleScores(
        "summarization",
        split_digest(data, "test"),
        example_ids(data.test.documents[:n]),
        values={k: [float(v) for v in vs] for k, vs in values.items()},
    )
    return scores.to_document()


def _weights(n_examples: int, indices: np.ndarray) -> np.ndarray:
    """Resample index rows -> how often each example is drawn in each row."""
    import numpy as np

    rows = indices.shape[0]
    offsets = (indices + (np.arange(rows) * n_examples)[:, None]).ravel()
    return np.bincount(offsets, minlength=rows * n_examples).reshape(rows, n_examples).astype(float)


def _macro(weights: np.ndarray, labels: np.ndarray, predictions: np.ndarray, n_classes: int, metric: str) -> np.ndarray:
    """Macro precision/recall/F1 for every weight row, as scikit-learn computes them (zero_division=0, averaged
    over the classes present in the labels or the predictions of that resample)."""
    import numpy as np

    total = np.zeros(weights.shape[0])
    present = np.zeros(weights.shape[0])
    for c in range(n_classes):
        tp = weights @ ((labels == c) & (predictions == c))
        predicted = weights @ (predictions == c)
        actual = weights @ (labels == c)
        if metric == "test_precision":
            denominator, numerator = predicted, tp
        elif metric == "test_recall":
            denominator, numerator = actual, tp
        else:
            denominator, numerator = predicted + actual, 2 * tp
        total += np.divide(numerator, denominator, out=np.zeros_like(tp, dtype=float), where=denominator > 0)
        present += (predicted + actual) > 0
    return np.divide(total, present, out=np.zeros_like(total), where=present > 0)


def metric_on_weights(scores: PerExampleScores, metric: str, weights: np.ndarray) -> np.ndarray:
    """`metric` recomputed for each row of example weights (a row of ones is the plain score)."""
    import numpy as np

    if scores.task == "classification":
        if metric not in _CLASSIFICATION:
            raise RegistryError(
                f"{metric}: no per-example scores for it in a classification run; compare supports {', '.join(_CLASSIFICATION)}"
            )
        labels, predictions = np.asarray(scores.labels), np.asarray(scores.predictions)
        n_classes = max(len(scores.label_names), int(max(labels.max(), predictions.max())) + 1)
        return _macro(weights, labels, predictions, n_classes, metric)
    if metric not in scores.values:
        raise RegistryError(f"{metric}: no per-example scores for it in this run (has: {', '.join(scores.values) or 'none'})")
    values = np.asarray(scores.values[metric], dtype=float)
    scored = ~np.isnan(values)
    counted = weights @ scored
    means: np.ndarray = np.divide(
        weights @ np.where(scored, values, 0.0), counted, out=np.full(weights.shape[0], np.nan), where=counted > 0
    )
    return means


@dataclass
class BootstrapResult:
    metric: str
    challenger: float
    champion: float
    delta: float  # challenger - champion, signed so that positive is better
    low: float
    high: float
    confidence: float
    n_bootstrap: int
    seed: int


def check_same_split(challenger: PerExampleScores, champion: PerExampleScores, what: str = "") -> None:
    """Raise `SplitMismatch` unless both were scored on the same examples in the same order."""
    prefix = f"{what}: " if what else ""
    if challenger.task != champion.task:
        raise SplitMismatch(f"{prefix}challenger is a {challenger.task} model, champion a {champion.task} model")
    if challenger.digest != champion.digest or challenger.ids != champion.ids:
        differing = sum(a != b for a, b in zip(challenger.ids, champion.ids, strict=False)) + abs(len(challenger.ids) - len(champion.ids))
        raise SplitMismatch(
            f"{prefix}test splits differ (dataset digest {challenger.digest} vs {champion.digest}, {len(challenger.ids)} vs "
            f"{len(champion.ids)} examples, {differing} differing ids); compare on the same test split"
        )


def paired_bootstrap(
    challenger: PerExampleScores,
    champion: PerExampleScores,
    metric: str,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool = True,
) -> BootstrapResult:
    """The difference in `metric` with a percentile confidence interval from `n_bootstrap` paired resamples.

    Deterministic for a given seed: the resampled indices depend only on the seed and the split size.
    """
    import numpy as np

    check_same_split(challenger, champion)
    n = len(challenger.ids)
    if n == 0:
        raise SplitMismatch("no test examples to compare on")
    sign = 1.0 if higher_is_better else -1.0
    ones = np.ones((1, n))
    point = (float(metric_on_weights(challenger, metric, ones)[0]), float(metric_on_weights(champion, metric, ones)[0]))
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, n_bootstrap, _BLOCK):
        weights = _weights(n, rng.integers(0, n, size=(min(_BLOCK, n_bootstrap - start), n)))
        deltas.append(sign * (metric_on_weights(challenger, metric, weights) - metric_on_weights(champion, metric, weights)))
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(np.concatenate(deltas), [alpha, 1 - alpha])
    return BootstrapResult(metric, point[0], point[1], sign * (point[0] - point[1]), float(low), float(high), confidence, n_bootstrap, seed)
