"""Files on this machine: the split files `dataset.splits` names, or the file or folder `dataset.path` names (a table
to split, a folder of train/validation/test.csv, a `datasets` directory). Relative paths are tried as given, then
against the config's folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.data._read import read_datasets, read_frame
from mlops.data._task_data import SPLITS
from mlops.data.sources._base import Frames

if TYPE_CHECKING:
    from mlops.config import DatasetConfig


def _local(p: str, base_dir: Path) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() or path.exists() else base_dir / path


def read_split_files(cfg: DatasetConfig, base_dir: Path) -> Frames:
    """One table per split `dataset.splits` names."""
    return {
        name: (read_frame(_local(p, base_dir), cfg.format, f"dataset.splits.{name}"), str(_local(p, base_dir)))
        for name, p in cfg.splits.items()
    }


def read_local_path(cfg: DatasetConfig, base_dir: Path) -> Frames:
    """The tables of the file or folder `dataset.path` names."""
    path = _local(cfg.path, base_dir)
    if cfg.format in ("auto", "csv") and all((path / f"{s}.csv").is_file() for s in SPLITS):  # e.g. a copy of `augment`'s output
        return {s: (read_frame(path / f"{s}.csv", "csv", "dataset.path"), str(path / f"{s}.csv")) for s in SPLITS}
    if cfg.format == "disk" or (cfg.format == "auto" and path.is_dir()):
        return {k: (v, f"{path}/{k}") for k, v in read_datasets(str(path), "disk").items()}
    return {"all": (read_frame(path, cfg.format, "dataset.path"), str(path))}
