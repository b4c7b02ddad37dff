"""Tables logged as a run's MLflow dataset inputs (name, content digest, where they came from), with the `runs:/`
dataset source MLflow's registry lacks, so that a table read from a run's artifact keeps that URI as its source."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.data.pandas_dataset import PandasDataset

RUN_ARTIFACT_SCHEME = "runs:/"


def pandas_input(frame: pd.DataFrame, source: str, name: str, target: str) -> PandasDataset:
    """`frame` as an MLflow dataset named `name`, read from `source` (a path or URI), its `target` column the targets."""
    import warnings

    from mlflow.data.pandas_dataset import from_pandas

    _register_run_artifact_source()
    with warnings.catch_warnings():  # mlflow warns when a source is not a URI it knows
        warnings.simplefilter("ignore")
        return from_pandas(frame, source=source, name=name, targets=target)


def log_inputs(datasets: Sequence[PandasDataset], contexts: Sequence[str]) -> None:
    """Log `datasets` as the active run's inputs, each with its context, in one store call."""
    import mlflow

    mlflow.log_inputs(list(datasets), list(contexts), [None] * len(datasets))


def frame_digest(frame: pd.DataFrame) -> str:
    """The digest MLflow records for `frame` as a dataset input (content only)."""
    from mlflow.data.digest_utils import compute_pandas_digest

    return str(compute_pandas_digest(frame))


@functools.cache
def _register_run_artifact_source() -> None:
    """Teach MLflow's dataset-source registry `runs:/<run_id>/<path>` (data read from an `augment` run's artifact),
    which it does not resolve itself, so that such splits keep that URI as their logged source."""
    from mlflow.artifacts import download_artifacts
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.dataset_source_registry import register_dataset_source

    class RunArtifactDatasetSource(DatasetSource):
        def __init__(self, uri: str) -> None:
            self.uri = uri

        @staticmethod
        def _get_source_type() -> str:
            return "mlflow_run_artifact"

        def load(self, dst_path: str | None = None) -> str:
            return download_artifacts(artifact_uri=self.uri, dst_path=dst_path)

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return isinstance(raw_source, str) and raw_source.startswith(RUN_ARTIFACT_SCHEME)

        @classmethod
        def _resolve(cls, raw_source: Any) -> RunArtifactDatasetSource:
            return cls(str(raw_source))

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.uri}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> RunArtifactDatasetSource:
            return cls(source_dict["uri"])

    register_dataset_source(RunArtifactDatasetSource)  # type: ignore[arg-type]  # it takes the class; its hint says an instance
