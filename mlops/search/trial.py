"""Where a trial becomes an MLflow child run: one Optuna trial = one child run of the sweep's parent, holding the
trial's params, curves, metrics and adapter, ended FINISHED, KILLED (pruned) or FAILED."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.search.space import suggest
from mlops.tracking import ended
from mlops.train import Prepared, train_and_log

if TYPE_CHECKING:
    import optuna

    from mlops.config import ExperimentConfig


@dataclass(frozen=True)
class SweepLink:
    """Where a worker's trials go: the parent run (shared by all workers) and this worker's own run."""

    parent_run_id: str
    worker_run_id: str
    experiment_id: str


def run_trial_as_child_run(
    trial: optuna.Trial, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink, retry_of: int | None = None
) -> float:
    """The objective: one trial = one MLflow child run of the sweep's parent, holding its params,
    curves, metrics and adapter.

    The child is created under `link.parent_run_id` explicitly, so a second worker or a resumed
    sweep adds its trials to the same parent. A pruned trial's run ends KILLED with `pruned*`
    tags and keeps its curves; a failed one ends FAILED with an `error` tag.
    """
    import mlflow
    import optuna

    params = suggest(trial, config.search.space)
    trial_config = config.with_params(params)
    hp = trial_config.training
    pruned_at: list[int] = []

    def report(value: float, epoch: int) -> None:
        trial.report(value, epoch)
        if epoch < hp.epochs and trial.should_prune():  # after the last epoch there is nothing left to save
            pruned_at.append(epoch)
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({config.search.metric}={value:.4f})")

    tags = {
        "mlflow.parentRunId": link.parent_run_id,
        "optuna.study_name": trial.study.study_name,
        "optuna.trial_number": str(trial.number),
        "mlops.worker_run_id": link.worker_run_id,
    }
    if retry_of is not None:
        tags["mlops.retry_of_trial"] = str(retry_of)
    created = mlflow.MlflowClient().create_run(link.experiment_id, tags=tags, run_name=f"trial-{trial.number}")
    trial.set_user_attr("mlflow_run_id", created.info.run_id)
    trial.set_user_attr("mlflow_worker_run_id", link.worker_run_id)
    with ended(mlflow.start_run(run_id=created.info.run_id, nested=True), killed_by=(optuna.TrialPruned,)):
        mlflow.log_param("trial_number", trial.number)
        try:
            result = train_and_log(trial_config, prepared, scratch / f"trial-{trial.number}", reporter=report)
        except optuna.TrialPruned as pruned:
            mlflow.set_tags({"pruned": "true", "pruned_at_epoch": str(pruned_at[-1]), "pruned_reason": str(pruned)})
            raise
    trial.set_user_attr("test_metrics", result.test)
    return result.validation[config.search.metric]
