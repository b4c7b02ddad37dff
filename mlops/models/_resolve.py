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

    Hub ids are only tried when the hub is reachable in principle (HF_HUB_OFFLINE unset) or the Hugging Face cache
    holds them; offline and uncached, a hub id is a `ModelSourceError` saying how to point at a local copy;
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
    if "/" in name and not name.startswith((".", "/")):
        if os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false") or _in_hub_cache(name):
            return HubSource(name, listing)
        raise ModelSourceError(
            f"model.source: hub model '{name}' is not available offline (HF_HUB_OFFLINE is set and the Hugging Face cache "
            f"has no copy); download it where the hub is reachable (hf download {name} --local-dir DIR) and set "
            f"model.source to that directory; available offline: {listing}"
        )
    raise ModelSourceError(
        f"model.source: unknown model '{name}'; available offline: {listing}; or give a local directory or runs:/<run_id>/pretrained"
    )


def _in_hub_cache(repo_id: str) -> bool:
    """Whether the Hugging Face cache holds `repo_id` (its config.json), so that it loads with HF_HUB_OFFLINE set."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
