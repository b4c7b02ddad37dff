"""The data-source interface and its registry: a source reads the tables a `dataset.path` with its prefix names.

A new prefix is one module with a `DataSource` and one `register_source(...)` line, imported by `mlops.data.sources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from mlops.config import DatasetConfig

# Split name (train, validation, test; "all" for a table still to split) -> (the table, where it came from).
Frames = dict[str, tuple["pd.DataFrame", str]]


class DataSource(Protocol):
    """Where the tables of a `dataset.path` with a given prefix (`demo:`, `hub:`, `runs:/`) come from."""

    def matches(self, uri: str) -> bool:
        """Whether `uri` (a `dataset.path`) names this source; the sources' prefixes are disjoint."""

    def read(self, cfg: DatasetConfig, base_dir: Path) -> Frames:
        """The tables `cfg.path` names; a `DataError` naming `dataset.path` when they cannot be read."""


SOURCES: list[DataSource] = []


def register_source(source: DataSource) -> None:
    SOURCES.append(source)
