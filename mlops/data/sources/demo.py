"""`demo:NAME`: a dataset packaged with mlops, one CSV per split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import demo_dataset_dir
from mlops.data._read import read_frame
from mlops.data._task_data import SPLITS
from mlops.data.sources._base import Frames, register_source

if TYPE_CHECKING:
    from mlops.config import DatasetConfig

PREFIX = "demo:"


class DemoDataSource:
    def matches(self, uri: str) -> bool:
        return uri.startswith(PREFIX)

    def read(self, cfg: DatasetConfig, base_dir: Path) -> Frames:
        folder = demo_dataset_dir(cfg.path[len(PREFIX) :])
        return {s: (read_frame(folder / f"{s}.csv", "csv", "dataset.path"), str(folder / f"{s}.csv")) for s in SPLITS}


register_source(DemoDataSource())
