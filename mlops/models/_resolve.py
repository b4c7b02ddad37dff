"""`model.source` -> a model source: a registered name, a local directory, a run artifact or a hub id."""

from __future__ import annotations

import os
from pathlib import Path

from mlops.errors import ModelSourceError
from mlops.models._base import SOURCES, ModelSource, PretrainedDirSource, available_sources
from mlops.models.hub import HubSource
from mlops.models.run_artifact import RunArtifactSource


def resolve_source(name: str) -> ModelSource:
    """A registered name, an existing local directory, a run artifact (`runs:/<run_id>/pretrained`), or a hub id (`org/name`).

    Hub ids are only tried when the hub is reachable in principle (HF_HUB_OFFLINE unset);
    anything else is a `ModelSourceError` listing the named sources.
    """
    if name in SOURCES:
        return SOURCES[name]
    if name.startswith(RunArtifactSource.scheme):
        return RunArtifactSource(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"model.source: {path} has no config.json; not a transformers model directory")
        return PretrainedDirSource(str(path))
    listing = "; ".join(f"{k} ({v})" for k, v in available_sources().items())
    if "/" in name and not name.startswith((".", "/")) and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
        return HubSource(name, listing)
    raise ModelSourceError(
        f"model.source: unknown model '{name}'; available offline: {listing}; or give a local directory or runs:/<run_id>/pretrained"
    )
