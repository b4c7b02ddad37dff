"""`hub:NAME` (or a name with `dataset.format: hub`): a dataset on the Hugging Face hub, one table per split it has."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.data._read import read_datasets
from mlops.data.sources._base import Frames, register_source

if TYPE_CHECKING:
    from mlops.config import DatasetConfig

PREFIX = "hub:"


class HubDataSource:
    def matches(self, uri: str) -> bool:
        return uri.startswith(PREFIX)

    def read(self, cfg: DatasetConfig, base_dir: Path) -> Frames:
        name = cfg.path.removeprefix(PREFIX)
        return {k: (v, f"{name}/{k}") for k, v in read_datasets(name, "hub").items()}


register_source(HubDataSource())
