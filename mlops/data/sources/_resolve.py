"""`dataset` config -> its tables: the given split files, the source whose prefix `dataset.path` has, or local files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.data.sources._base import SOURCES, Frames
from mlops.data.sources.hub import HubDataSource
from mlops.data.sources.local import read_local_path, read_split_files

if TYPE_CHECKING:
    from mlops.config import DatasetConfig


def read_frames(cfg: DatasetConfig, base_dir: Path) -> Frames:
    """The tables `cfg` names, each with where it came from: the files `dataset.splits` names (they override
    `dataset.path`), else those of the registered source `dataset.path` names by its prefix, else a hub name
    (`dataset.format: hub`), else the local file or folder `dataset.path`, relative to `base_dir` if not found as given."""
    if cfg.splits:
        return read_split_files(cfg, base_dir)
    for source in SOURCES:
        if source.matches(cfg.path):
            return source.read(cfg, base_dir)
    if cfg.format == "hub":  # a hub name without its `hub:` prefix
        return HubDataSource().read(cfg, base_dir)
    return read_local_path(cfg, base_dir)
