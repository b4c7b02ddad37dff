"""A nested Optuna search: one MLflow parent run per sweep, and each trial becomes an MLflow child run.

Flow: check everything (config, data, model, policy, storage) before any run starts, then
parent run -> trials as child runs -> best trial summary -> register + staging gate.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import ExperimentConfig
from mlops.errors import ConfigError, GateFailed
from mlops.finetune import Prepared, prepare
from mlops.runs import entry_run, log_params_effective, redact_url
from mlops.sweep_report import log_sweep_summary

if TYPE_CHECKING:
    import optuna

    from mlops.promotion import GateReport, PromotionPolicy


@dataclass
class SweepOptions:
    storage: str | None = None  # default: optuna.db beside the SQLite tracking database
    study_name: str | None = None  # default: <config name>-<parent run id prefix>, a new study
    promote: bool = True


@dataclass
class SweepResult:
    parent_run_id: str
    study_name: str
    best_trial: int
    best_value: float
    best_run_id: str
    registered_version: str | None
    gate_report: GateReport | None


def default_storage() -> str:
    """`sqlite:///<dir of mlflow.db>/optuna.db` when tracking to SQLite, else `./optuna.db`."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    folder = Path.cwd()
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).resolve().parent
    return f"sqlite:///{folder / 'optuna.db'}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage behind `url`; a bad URL or missing driver is a one-line `ConfigError`."""
    import optuna

    try:
        return optuna.storages.get_storage(url)
    except (ValueError, ImportError, optuna.exceptions.OptunaError) as exc:
        raise ConfigError(f"storage: cannot open Optuna storage {redact_url(url)!r}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # SQLAlchemy's errors for unreachable or malformed databases
        raise ConfigError(f"storage: cannot open Optuna storage {redact_url(url)!r}: {type(exc).__name__}") from None


def _open_study(config: ExperimentConfig, storage: optuna.storages.BaseStorage, study_name: str) -> optuna.Study:
    import optuna

    from mlops.search_space import make_pruner, make_sampler

    sampler = make_sampler(config.search.sampler, config.search, config.training.seed)
    epochs = config.search.space.get("epochs")
    max_epochs = int(epochs.high) if epochs is not None and epochs.high is not None else config.training.epochs
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        pruner=make_pruner(config.search.pruner, max_epochs),
        direction=config.search.direction,
        load_if_exists=True,
    )


def run_trial_as_child_run(trial: optuna.Trial, config: ExperimentConfig, prepared: Prepared, scratch: Path) -> float:
    """The objective: one trial = one nested MLflow run holding its params, curves, metrics and adapter.

    A pruned trial's run ends KILLED with `pruned*` tags and keeps its curves; a failed one
    ends FAILED with an `error` tag. Optuna records PRUNED or FAIL, and the sweep goes on.
    """
    import mlflow
    import optuna

    from mlops.finetune import train_and_log
    from mlops.runs import ended
    from mlops.search_space import suggest

    hp = replace(config.training, **suggest(trial, config.search.space))
    pruned_at: list[int] = []

    def report(value: float, epoch: int) -> None:
        trial.report(value, epoch)
        if trial.should_prune():
            pruned_at.append(epoch)
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({config.search.metric}={value:.4f})")

    with ended(mlflow.start_run(run_name=f"trial-{trial.number}", nested=True), killed_by=(optuna.TrialPruned,)) as child:
        trial.set_user_attr("mlflow_run_id", child.info.run_id)
        mlflow.set_tags({"optuna.study_name": trial.study.study_name, "optuna.trial_number": str(trial.number)})
        mlflow.log_param("trial_number", trial.number)
        try:
            result = train_and_log(config, hp, prepared, scratch / f"trial-{trial.number}", reporter=report)
        except optuna.TrialPruned as pruned:
            mlflow.set_tags({"pruned": "true", "pruned_at_epoch": str(pruned_at[-1]), "pruned_reason": str(pruned)})
            raise
    trial.set_user_attr("test_metrics", result.test)
    return result.validation[config.search.metric]


def _register_and_gate(
    config: ExperimentConfig, policy: PromotionPolicy, best_run_id: str, scratch: Path, best: optuna.trial.FrozenTrial, parent_run_id: str
) -> tuple[str, GateReport | None, GateFailed | None]:
    import mlflow

    from mlops.promotion import promote_if_gates_pass, register_version
    from mlops.serving import log_adapter_model

    adapter_dir = scratch / f"trial-{best.number}"
    if not adapter_dir.is_dir():  # best trial ran in an earlier session of a resumed study
        adapter_dir = Path(mlflow.artifacts.download_artifacts(run_id=best_run_id, artifact_path="adapter", dst_path=str(scratch / "best")))
    with mlflow.start_run(run_id=best_run_id, nested=True):
        info = log_adapter_model(adapter_dir)
    client = mlflow.MlflowClient()
    tags = {"source_run_id": best_run_id, "sweep_run_id": parent_run_id, "optuna_trial": str(best.number), "policy": policy.source_file}
    version = register_version(client, config.registry.model_name, info.model_uri, best_run_id, tags)
    mlflow.set_tag("registered_version", f"{version.name}/{version.version}")
    try:
        report = promote_if_gates_pass(client, policy, version, "staging")
    except GateFailed as failed:
        mlflow.set_tag("promotion", f"rejected: {failed}"[:4000])
        return version.version, None, failed
    mlflow.set_tag("promotion", f"staging -> v{version.version}")
    return version.version, report, None


def run_sweep(config: ExperimentConfig, options: SweepOptions) -> SweepResult:
    """Run the search, summarise it on the parent run, then register and gate the best adapter."""
    import mlflow

    from mlops.baseline import tfidf_baseline
    from mlops.data import log_dataset_inputs
    from mlops.environment import log_environment

    prepared = prepare(config, options.promote)
    storage = options.storage or default_storage()
    optuna_storage = open_storage(storage)
    failed: GateFailed | None = None
    with (
        entry_run(config.mlflow_experiment, f"sweep-{config.name}", tags={"mlops.entry_point": "sweep"}) as parent,
        tempfile.TemporaryDirectory(prefix="mlops-sweep-") as tmp,
    ):
        parent_id = parent.info.run_id
        study_name = options.study_name or f"{config.name}-{parent_id[:8]}"
        study = _open_study(config, optuna_storage, study_name)
        study.set_user_attr("mlflow_parent_run_id", parent_id)
        mlflow.set_tags({"optuna.study_name": study_name, "optuna.storage": redact_url(storage)})
        log_params_effective(
            {
                "config": config.name,
                "task": config.task,
                "model_source": config.model.source,
                "sampler": config.search.sampler,
                "n_trials": config.search.n_trials,
                "seed": config.training.seed,
                "metric": config.search.metric,
                "study_name": study_name,
                "storage": redact_url(storage),
            }
        )
        mlflow.log_artifact(config.source_file, "config")
        log_environment()
        log_dataset_inputs(prepared.data)
        mlflow.log_metrics(tfidf_baseline(prepared.data, config.training.seed))
        scratch = Path(tmp)
        study.optimize(
            lambda trial: run_trial_as_child_run(trial, config, prepared, scratch),
            n_trials=config.search.n_trials,
            catch=(Exception,),
            gc_after_trial=True,
        )
        best = log_sweep_summary(study, config.search.metric)
        best_run_id = best.user_attrs["mlflow_run_id"]
        version, report = None, None
        if prepared.policy is not None:
            version, report, failed = _register_and_gate(config, prepared.policy, best_run_id, scratch, best, parent_id)
    if failed is not None:
        raise failed
    return SweepResult(parent_id, study_name, best.number, float(best.value or 0.0), best_run_id, version, report)
