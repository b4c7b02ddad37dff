"""Champion against challenger on the same test split: per-example scores and a paired bootstrap.

Training logs `per_example/test.json` on each run: the predictions and labels (classification, so F1 can be
recomputed on every resample: it is not a mean) or each example's score (summarisation), with the split's
digest and example ids. The bootstrap draws the same example indices for both models (paired) and gives a
percentile confidence interval for the difference challenger - champion.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.errors import RegistryError, SplitMismatch
from mlops.evaluate import PerExampleScores
from mlops.progress import step
from mlops.registry.policy import Compare

if TYPE_CHECKING:
    import numpy as np


_BLOCK = 256  # resamples evaluated at once: bounds memory at _BLOCK x examples counts


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

    if scores.from_predictions:
        supported = scores.metrics()
        if metric not in supported:
            raise RegistryError(f"{metric}: no per-example scores for it in a {scores.task} run; compare supports {', '.join(supported)}")
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


def check_same_text_tokenizer(challenger: str | None, champion: str | None, what: str = "") -> None:
    """Raise `SplitMismatch` when the two runs counted ROUGE and key terms in different units (their `text_tokenizer`
    params): the scores are not comparable. A run that predates the param is taken at its word."""
    if challenger and champion and challenger != champion:
        prefix = f"{what}: " if what else ""
        raise SplitMismatch(
            f"{prefix}text_tokenizer differs (challenger {challenger}, champion {champion}): their scores are not comparable"
        )


def _blocks(n_bootstrap: int, what: str) -> Iterator[int]:
    """The size of each block of resamples, in order; the resamples drawn so far are the bootstrap's progress."""
    with step(what, n_bootstrap) as progress:
        for start in range(0, n_bootstrap, _BLOCK):
            size = min(_BLOCK, n_bootstrap - start)
            yield size
            progress.update(start + size)


def paired_bootstrap(
    challenger: PerExampleScores,
    champion: PerExampleScores,
    metric: str,
    resampling: Compare | None = None,
    higher_is_better: bool = True,
) -> BootstrapResult:
    """The difference in `metric` with a percentile confidence interval from `resampling.n_bootstrap` paired
    resamples at `resampling.confidence` (default: a policy's `compare` defaults).

    Deterministic for a given seed: the resampled indices depend only on the seed and the split size.
    """
    import numpy as np

    c = resampling or Compare()
    n_bootstrap, confidence, seed = c.n_bootstrap, c.confidence, c.seed

    check_same_split(challenger, champion)
    n = len(challenger.ids)
    if n == 0:
        raise SplitMismatch("no test examples to compare on")
    sign = 1.0 if higher_is_better else -1.0
    ones = np.ones((1, n))
    point = (float(metric_on_weights(challenger, metric, ones)[0]), float(metric_on_weights(champion, metric, ones)[0]))
    rng = np.random.default_rng(seed)
    deltas = []
    for size in _blocks(n_bootstrap, f"paired bootstrap, {metric}"):
        weights = _weights(n, rng.integers(0, n, size=(size, n)))
        deltas.append(sign * (metric_on_weights(challenger, metric, weights) - metric_on_weights(champion, metric, weights)))
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(np.concatenate(deltas), [alpha, 1 - alpha])
    return BootstrapResult(metric, point[0], point[1], sign * (point[0] - point[1]), float(low), float(high), confidence, n_bootstrap, seed)


def bootstrap_interval(
    scores: PerExampleScores, metric: str, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """One model's `metric` with a percentile confidence interval from `n_bootstrap` resamples of its test examples:
    (value, low, high). Deterministic for a given seed."""
    import numpy as np

    n = len(scores.ids)
    if n == 0:
        raise RegistryError(f"{metric}: no test examples to resample")
    value = float(metric_on_weights(scores, metric, np.ones((1, n)))[0])
    rng = np.random.default_rng(seed)
    draws = [
        metric_on_weights(scores, metric, _weights(n, rng.integers(0, n, size=(size, n))))
        for size in _blocks(n_bootstrap, f"bootstrap, {metric}")
    ]
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(np.concatenate(draws), [alpha, 1 - alpha])
    return value, float(low), float(high)
