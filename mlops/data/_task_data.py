"""The loaded splits of a task's dataset: texts with their labels (classification), documents with their reference
summaries (summarisation), each also as the table MLflow logs as a dataset input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.data.report import DataReport

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("train", "validation", "test")


@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class ClassificationData:
    train: Split
    validation: Split
    test: Split
    label_names: list[str]
    name: str
    report: DataReport | None = None  # what the data contract checked, kept and dropped

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def frame(self, name: str) -> tuple[pd.DataFrame, str]:
        """The split as a table, and its target column (for MLflow's dataset inputs)."""
        import pandas as pd

        split = self.split(name)
        return pd.DataFrame({"text": split.texts, "label": [self.label_names[i] for i in split.labels]}), "label"

    def serving_frame(self, name: str, limit: int) -> pd.DataFrame:
        """The first `limit` inputs of the split as the served model takes them (what its cost is measured on)."""
        import pandas as pd

        return pd.DataFrame({"text": self.split(name).texts[:limit]})


@dataclass
class PairSplit:
    """Documents with their reference summaries (and the key terms each summary must keep, if given)."""

    documents: list[str]
    summaries: list[str]
    key_terms: list[list[str]]
    source: str

    def __len__(self) -> int:
        return len(self.documents)


@dataclass
class SummarizationData:
    train: PairSplit
    validation: PairSplit
    test: PairSplit
    name: str
    report: DataReport | None = None  # what the data contract checked, kept and dropped

    def split(self, name: str) -> PairSplit:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def frame(self, name: str) -> tuple[pd.DataFrame, str]:
        import json

        import pandas as pd

        split = self.split(name)
        terms = [json.dumps(t) for t in split.key_terms]
        return pd.DataFrame({"document": split.documents, "summary": split.summaries, "key_terms": terms}), "summary"

    def serving_frame(self, name: str, limit: int) -> pd.DataFrame:
        """The first `limit` inputs of the split as the served model takes them (what its cost is measured on)."""
        import pandas as pd

        return pd.DataFrame({"document": self.split(name).documents[:limit]})


TaskData = ClassificationData | SummarizationData
