"""`mlops reproduce`: re-run a registered version's trial from its lineage and compare every metric with the original.

The trial run carries its fully resolved config (`config/resolved.json`: the experiment config with the trial's
hyperparameters and seed applied) and its datasets' digests. The reproduction loads the same data (checked by
digest), trains in a new run tagged `mlops.reproduction_of=<original run id>`, and reports each metric's delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import config_from_resolved
from mlops.data import split_digest
from mlops.errors import DataError, RegistryError
from mlops.progress import step
from mlops.tracking import (
    ENTRY_POINT_TAG,
    REPRODUCED_MODEL_TAG,
    REPRODUCTION_ARTIFACT,
    REPRODUCTION_OF_TAG,
    RESOLVED_CONFIG_ARTIFACT,
    entry_run,
    resolve_model_version,
)
from mlops.train.finetune import prepare, train_and_log
from mlops.train.telemetry import MEASURED_METRICS, TIMING_SUFFIXES

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from mlops.config import ExperimentConfig

_TIMING_SUFFIXES = ("_seconds", *TIMING_SUFFIXES)  # wall-clock figures: not expected to repeat
_SYSTEM_PREFIX = "system/"  # MLflow's system metrics (CPU, memory, GPU utilisation)


def _load_resolved(client: MlflowClient, version: ModelVersion) -> ExperimentConfig:
    import json
    import tempfile

    from mlflow.exceptions import MlflowException

    where = f"{version.name} v{version.version}"
    if not version.run_id:
        raise RegistryError(f"{where} has no source run to reproduce")
    with tempfile.TemporaryDirectory(prefix="mlops-repro-") as tmp:
        try:
            path = client.download_artifacts(version.run_id, RESOLVED_CONFIG_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise RegistryError(
                f"{where}: run {version.run_id} has no {RESOLVED_CONFIG_ARTIFACT} (trained before lineage was recorded); cannot reproduce"
            ) from None
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    return config_from_resolved(document, f"runs:/{version.run_id}/{RESOLVED_CONFIG_ARTIFACT}")


def _digests(run: Run) -> dict[str, str]:
    """Dataset digest per split (input context) of a run."""
    digests = {}
    for item in run.inputs.dataset_inputs if run.inputs else []:
        split = next((t.value for t in item.tags if t.key == "mlflow.data.context"), None)
        if split is not None:
            digests[split] = item.dataset.digest
    return digests


def _check_digests(expected: dict[str, str], actual: dict[str, str], splits: tuple[str, ...]) -> None:
    """The data must be the data the original trained and was scored on (by MLflow dataset digest)."""
    for split in splits:
        if split in expected and actual.get(split) != expected[split]:
            raise DataError(
                f"dataset: the {split} split's digest is {actual.get(split)}, the original run's was {expected[split]}; the data changed"
            )


@dataclass
class Reproduction:
    run_id: str
    original_run_id: str
    deltas: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # metric -> (original, reproduced, delta)

    @property
    def max_abs_delta(self) -> float:
        return max((abs(d) for _, _, d in self.deltas.values()), default=0.0)


def compare_metrics(original: dict[str, float], reproduced: dict[str, float]) -> dict[str, tuple[float, float, float]]:
    shared = sorted(
        k
        for k in original.keys() & reproduced.keys()
        if not (k.endswith(_TIMING_SUFFIXES) or k.startswith(_SYSTEM_PREFIX) or k in MEASURED_METRICS)
    )
    return {k: (original[k], reproduced[k], reproduced[k] - original[k]) for k in shared}


def run_reproduce(model_uri: str) -> Reproduction:
    """Re-run the trial behind `model_uri` (resolved config, trial hyperparameters and seed) in a new tagged run."""
    import tempfile

    import mlflow

    client = mlflow.MlflowClient()
    version = resolve_model_version(client, model_uri)
    config = _load_resolved(client, version)
    original = client.get_run(str(version.run_id))
    prepared = prepare(config)
    expected = _digests(original)
    # before training: the evaluation splits (and the train split unless augmentation rebuilds it in the run)
    splits = ("validation", "test") if config.augment.methods else ("train", "validation", "test")
    _check_digests(expected, {s: split_digest(prepared.data, s) for s in splits}, splits)
    experiment = client.get_experiment(original.info.experiment_id).name
    tags = {
        ENTRY_POINT_TAG: "reproduce",
        REPRODUCTION_OF_TAG: original.info.run_id,
        REPRODUCED_MODEL_TAG: f"{version.name}/{version.version}",
    }
    with (
        step(f"reproducing {version.name} v{version.version}"),
        entry_run(experiment, f"reproduce-{version.name}-v{version.version}", tags=tags) as run,
        tempfile.TemporaryDirectory(prefix="mlops-repro-") as tmp,
    ):
        train_and_log(config, prepared, Path(tmp) / "adapter")
        again = client.get_run(run.info.run_id)
        _check_digests(expected, _digests(again), ("train",))  # the (augmented) train split as logged by both runs
        reproduced = again.data.metrics
        result = Reproduction(run.info.run_id, original.info.run_id, compare_metrics(original.data.metrics, reproduced))
        mlflow.log_dict({k: {"original": o, "reproduced": r, "delta": d} for k, (o, r, d) in result.deltas.items()}, REPRODUCTION_ARTIFACT)
        mlflow.log_metric("reproduction_max_abs_delta", result.max_abs_delta)
    return result
