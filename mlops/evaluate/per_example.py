"""Per-example scores on the test split (`per_example/test.json`), the evidence a champion/challenger gate resamples:
a classifier's labels and predictions (F1 is recomputed per resample: it is not a mean), or each summary's scores,
with the split's digest and example ids."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.data import ClassificationData, SummarizationData, TaskData, split_digest
from mlops.tasks import spec_for


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

    @property
    def from_predictions(self) -> bool:
        """Labels and predictions (a metric is recomputed per resample), not a score per example (`values`)."""
        return spec_for(self.task).per_example == "predictions"

    def metrics(self) -> list[str]:
        """The metrics these scores can be resampled for: the spec's, or the scores logged (those computed)."""
        if self.from_predictions:
            return [m.name for m in spec_for(self.task).test if m.per_example]
        return list(self.values)

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


def classification_per_example(data: TaskData, predictions: Sequence[int]) -> dict[str, Any]:
    """The `per_example/test.json` document of a classifier: test labels, its predictions, digest and ids."""

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
