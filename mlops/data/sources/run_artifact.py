"""`runs:/<run_id>/augmented`: the three split CSVs an `augment` run logged, read from a temporary download."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.data._read import read_frame
from mlops.data._task_data import SPLITS
from mlops.data.sources._base import Frames, register_source
from mlops.errors import DataError
from mlops.tracking import RUN_ARTIFACT_SCHEME

if TYPE_CHECKING:
    from mlops.config import DatasetConfig


class RunArtifactDataSource:
    def matches(self, uri: str) -> bool:
        return uri.startswith(RUN_ARTIFACT_SCHEME)

    def read(self, cfg: DatasetConfig, base_dir: Path) -> Frames:
        import tempfile

        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        uri = cfg.path
        run_id, _, artifact_path = uri[len(RUN_ARTIFACT_SCHEME) :].strip("/").partition("/")
        if not run_id or not artifact_path:
            raise DataError(f"dataset.path: '{uri}' is not a run artifact URI; expected runs:/<run_id>/augmented")
        with tempfile.TemporaryDirectory(prefix="mlops-data-") as tmp:
            try:
                folder = Path(download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=tmp))
            except (MlflowException, OSError) as exc:
                raise DataError(f"dataset.path: cannot download '{uri}' ({str(exc).splitlines()[0]})") from None
            missing = [f"{s}.csv" for s in SPLITS if not (folder / f"{s}.csv").is_file()]
            if missing:
                raise DataError(f"dataset.path: '{uri}' has no {', '.join(missing)}; expected the `augmented` artifact of an augment run")
            return {s: (read_frame(folder / f"{s}.csv", "csv", "dataset.path"), f"{uri.rstrip('/')}/{s}.csv") for s in SPLITS}


register_source(RunArtifactDataSource())
