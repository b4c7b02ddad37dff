"""A dataset's MLflow lineage: its splits as the run's dataset inputs, their digests, and the `augment` run it came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.data._task_data import SPLITS, TaskData
from mlops.data.memo import once_per_split
from mlops.tracking import AUGMENT_RUN_TAG, DATASET_URI_TAG, RUN_ARTIFACT_SCHEME, frame_digest, log_inputs, pandas_input

if TYPE_CHECKING:
    from mlops.config import DatasetConfig


def dataset_lineage(cfg: DatasetConfig) -> dict[str, str]:
    """Run tags naming the `augment` run a dataset came from (`runs:/<run_id>/augmented`); empty for any other dataset."""
    if not cfg.path.startswith(RUN_ARTIFACT_SCHEME):
        return {}
    run_id = cfg.path[len(RUN_ARTIFACT_SCHEME) :].strip("/").partition("/")[0]
    return {AUGMENT_RUN_TAG: run_id, DATASET_URI_TAG: cfg.path}


def log_dataset_inputs(data: TaskData, splits: tuple[str, ...] = SPLITS, context: str | None = None) -> None:
    """Record each split as an MLflow input (name + content digest) for lineage in the UI; the context is the
    split's name unless given (e.g. `augment_source` for the train split an augmented one was made from)."""

    def dataset(name: str) -> Any:
        frame, target = data.frame(name)
        return pandas_input(frame, data.split(name).source, f"{data.name}:{name}", target)

    logged = [once_per_split(data.split(name), ("mlflow_dataset", data.name, name), lambda name=name: dataset(name)) for name in splits]  # type: ignore[misc]
    log_inputs(logged, [context or name for name in splits])


def split_digest(data: TaskData, split: str) -> str:
    """The digest MLflow records for this split as a dataset input (content only)."""
    return once_per_split(data.split(split), ("digest", data.name, split), lambda: frame_digest(data.frame(split)[0]))
