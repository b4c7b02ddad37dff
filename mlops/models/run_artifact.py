"""runs:/<run_id>/pretrained: a model directory logged by an MLflow run (`pretrain`), downloaded once into the cache."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from mlops.errors import ModelSourceError
from mlops.models._base import PretrainedDirSource, model_cache_dir, write_atomically
from mlops.tracking.names import BASE_MODEL_RUN_TAG, BASE_MODEL_URI_TAG  # strings only: model sources log nothing

logger = logging.getLogger(__name__)


class RunArtifactSource(PretrainedDirSource):
    """A model directory logged to an MLflow run (`runs:/<run_id>/pretrained`, from `pretrain`), downloaded once.

    The copy lives under `model_cache_dir() / "runs" / <run_id> / pretrained`, so later loads (a sweep's trials,
    a served model) need neither the tracking server nor a second download.
    """

    scheme = "runs:/"

    def __init__(self, uri: str) -> None:
        run_id, _, artifact_path = uri[len(self.scheme) :].strip("/").partition("/")
        if not run_id or not artifact_path:
            raise ModelSourceError(f"model.source: '{uri}' is not a run artifact URI; expected runs:/<run_id>/pretrained")
        super().__init__(uri, name=uri, description=f"the model logged at '{artifact_path}' of run {run_id}")
        self.run_id = run_id
        self.artifact_path = artifact_path.strip("/")

    def path(self) -> str:
        cached = model_cache_dir() / "runs" / self.run_id / self.artifact_path
        if not cached.is_dir():  # it only ever appears whole, by rename
            logger.info("model.source '%s': downloading once into %s", self.location, cached)
            write_atomically(cached, self._download)
        return str(cached)

    def lineage(self) -> dict[str, str]:
        return {BASE_MODEL_RUN_TAG: self.run_id, BASE_MODEL_URI_TAG: self.location}

    def _download(self, staging: Path) -> None:
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        try:
            fetched = Path(download_artifacts(run_id=self.run_id, artifact_path=self.artifact_path, dst_path=str(staging / ".fetch")))
        except (MlflowException, OSError) as exc:
            raise ModelSourceError(f"model.source: cannot download '{self.location}' ({str(exc).splitlines()[0]})") from None
        if not (fetched / "config.json").is_file():
            raise ModelSourceError(f"model.source: '{self.location}' has no config.json; not a transformers model directory")
        for item in fetched.iterdir():
            item.rename(staging / item.name)
        shutil.rmtree(staging / ".fetch")
