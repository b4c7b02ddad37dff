"""Write task data back as one CSV per split, the folder layout `dataset.path` reads (an `augment` run's output)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.data._task_data import SPLITS, ClassificationData, TaskData

if TYPE_CHECKING:
    from mlops.config import DatasetConfig


def write_task_data(data: TaskData, cfg: DatasetConfig, folder: Path) -> None:
    """Write each split to `<folder>/<split>.csv` under the config's column names, so that `dataset.path`
    (that folder, or the run artifact it was logged as) reads it back with the same config."""
    import json

    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        columns: dict[str, list[Any]]
        if isinstance(data, ClassificationData):
            split = data.split(name)
            columns = {cfg.text_column: split.texts, cfg.label_column: [data.label_names[i] for i in split.labels]}
        else:
            pairs = data.split(name)
            columns = {cfg.document_column: pairs.documents, cfg.summary_column: pairs.summaries}
            if cfg.key_terms_column is not None:
                columns[cfg.key_terms_column] = [json.dumps(t, ensure_ascii=False) for t in pairs.key_terms]
        pd.DataFrame(columns).to_csv(folder / f"{name}.csv", index=False)
