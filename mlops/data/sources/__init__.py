"""Where a dataset's tables come from: one module per `dataset.path` prefix (`demo:`, `hub:`, `runs:/`), each
registered once, and local files (`dataset.splits`, or a file or folder as `dataset.path`).

Importing this package registers every prefixed source.
"""

from mlops.data.sources import demo, hub, run_artifact
from mlops.data.sources._base import SOURCES, DataSource, Frames, register_source
from mlops.data.sources._resolve import read_frames

__all__ = ["SOURCES", "DataSource", "Frames", "demo", "hub", "read_frames", "register_source", "run_artifact"]
