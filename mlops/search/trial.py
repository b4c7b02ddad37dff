"""Where a trial becomes an MLflow child run: one Optuna trial = one child run of the sweep's parent, holding the
trial's params, curves, metrics, system metrics and adapter (with `search.seeds_per_trial` > 1: the seeds' mean and
spread, each seed a nested run), ended FINISHED, KILLED (pruned, or out of memory: see `mlops.search.memory`) or FAILED.
A trial whose configuration a completed trial already ran trains nothing: its run ends FINISHED with that trial's
results, tagged `mlops.duplicate_of`. Optuna is told the value of each objective (`search.objectives`, else
`search.metric`) as the run logged it; a trial that breaks `search.constraints` is tagged `mlops.infeasible`."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.errors import ConfigError
from mlops.search.checkpoints import Resume, TrialCheckpoints, continue_lost_trial, discard, find_resume, plan_for, retry_tags
from mlops.search.console import NullConsole, SweepConsole
from mlops.search.duplicates import CONFIG_KEY_ATTR, DUPLICATE_OF_ATTR, completed_original, configuration_key
from mlops.search.memory import train_within_memory
from mlops.search.plan import end_infeasible, infeasible_before_launch
from mlops.search.seeds import SeedsResult, seeds_for, train_seeds
from mlops.search.space import suggest
from mlops.tracking import (
    ADAPTER_RUN_ATTR,
    CONSTRAINTS_ATTR,
    DUPLICATE_RUN_TAG,
    DUPLICATE_TAG,
    EPOCHS_REPORTED_ATTR,
    EPOCHS_SAVED_ATTR,
    GAP_ATTR,
    INFEASIBLE_TAG,
    RETRY_OF_TAG,
    SEED_OF_TAG,
    TRIAL_RUN_ATTR,
    TRIAL_WORKER_RUN_ATTR,
    WORKER_RUN_TAG,
    ChildRun,
)
from mlops.train import FinetuneResult, Prepared, train_and_log

if TYPE_CHECKING:
    from collections.abc import Collection

    import optuna

    from mlops.config import ExperimentConfig, SearchConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepLink:
    """Where a worker's trials go: the parent run (shared by all workers), this worker's own run, and the study's
    checkpoint place (None: trials save no checkpoint)."""

    parent_run_id: str
    worker_run_id: str
    experiment_id: str
    console: SweepConsole = field(default_factory=NullConsole)  # told when a trial starts and at each epoch
    checkpoints: TrialCheckpoints | None = None  # where trials checkpoint; None: they save none


def run_trial_as_child_run(
    trial: optuna.Trial, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink, retry_of: int | None = None
) -> list[float]:
    """The objective: one trial = one MLflow child run of the sweep's parent, holding its params,
    curves, metrics and adapter; returns the value of each objective.

    The child is created under `link.parent_run_id` explicitly, so a second worker or a resumed
    sweep adds its trials to the same parent. A pruned trial's run ends KILLED with `pruned*`
    tags and keeps its curves; a failed one ends FAILED with an `error` tag. Settings that do not
    apply are neither drawn nor logged. Before anything trains, the trial's configuration key is
    looked up among the study's COMPLETE trials: a duplicate reuses that trial's result. The trial checkpoints
    to `link.checkpoints` at each evaluation point; the retry of a lost trial resumes from the lost trial's last one.
    """
    import mlflow
    import optuna

    space = config.search.space
    params = suggest(trial, space, config.tunable_values())
    link.console.trial_started(trial.number, params)
    trial_config = config.with_params(params)
    key = configuration_key(trial_config, space, prepared.data)
    trial.set_user_attr(CONFIG_KEY_ATTR, key)
    original = completed_original(trial.study, key)
    lost = next((t for t in trial.study.get_trials(deepcopy=False) if t.number == retry_of), None) if retry_of is not None else None
    resume = find_resume(link.checkpoints, lost, key) if lost is not None else Resume()
    seeds = seeds_for(trial_config, config.search.seeds_per_trial)
    pruned_at: list[int] = []

    def report(value: float, epoch: int) -> None:  # epoch: trial-epochs spent, over all seeds (`mlops.search.seeds`)
        link.console.trial_epoch(trial.number, epoch, value)
        if config.search.multi_objective:  # Optuna keeps no intermediate values of, and cannot prune, such a study
            trial.set_user_attr(EPOCHS_REPORTED_ATTR, epoch)
            return
        trial.report(value, epoch)
        if epoch < trial_config.training.epochs * len(seeds) and trial.should_prune():  # after the last epoch there is nothing left to save
            pruned_at.append(epoch)
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({config.search.metric}={value:.4f})")

    created = _create_trial_run(trial, link, original, retry_of, lost, resume)
    if original is not None:
        return _reuse(trial, original, created)
    infeasible = infeasible_before_launch(trial_config)
    if infeasible is not None:  # never started: the planner's estimate exceeds training.memory_budget_gib
        end_infeasible(created.run_id, infeasible, {**params, "trial_number": trial.number})
        raise optuna.TrialPruned(infeasible.reason)
    omit = trial_config.inapplicable(space)
    with created.started(killed_by=(optuna.TrialPruned,), log_system_metrics=True):
        mlflow.log_param("trial_number", trial.number)
        if lost is not None and resume.checkpoint is not None:
            continue_lost_trial(trial, lost, resume)
        out = scratch / f"trial-{trial.number}"
        try:

            def train(cfg: ExperimentConfig, fixed: Collection[str]) -> FinetuneResult | SeedsResult:
                if len(seeds) > 1:
                    return train_seeds(cfg, prepared, out, seeds, report, {*omit, *fixed})
                # After running out of memory (`fixed` holds the batch settings) the trial trains at another batch size:
                # nothing of the lost trial's checkpoint applies then.
                plan = None
                if link.checkpoints is not None:
                    plan = plan_for(link.checkpoints, trial.number, created.run_id, Resume() if fixed else resume)
                return train_and_log(cfg, prepared, out, report, {*omit, *fixed}, plan)

            result = train_within_memory(trial_config, train)  # out of memory: a smaller batch, or pruned (`search.on_oom`)
            _record_result(trial, result)
        except optuna.TrialPruned as pruned:
            at_epoch = {"pruned_at_epoch": str(pruned_at[-1])} if pruned_at else {}
            mlflow.set_tags({"pruned": "true", **at_epoch, "pruned_reason": str(pruned)})
            raise
        finally:  # an ended trial is never resumed
            discard(link.checkpoints, trial.number, created.run_id, lost)
        trial.set_user_attr("test_metrics", result.test)
        return _objective_values(trial, config.search, created.run_id, result.validation)  # a metric not logged fails the run too


def _objective_values(trial: optuna.Trial, search: SearchConfig, run_id: str, validation: dict[str, float]) -> list[float]:
    """What Optuna is told: each objective's value as the trial's run logged it; a broken bound of
    `search.constraints` tags the run and the trial `mlops.infeasible`."""
    if not search.objectives and not search.constraints:  # as before objectives and constraints
        return [validation[search.metric]]
    import mlflow

    values, violations = measured(search, run_id, validation, f"trial {trial.number}")
    trial.set_user_attr(CONSTRAINTS_ATTR, violations)
    broken = [f"{c.metric} outside [{c.min}, {c.max}] by {v:.4g}" for c, v in zip(search.constraints, violations, strict=True) if v > 0]
    if broken:
        reason = "breaks search.constraints: " + "; ".join(broken)
        trial.set_user_attr(INFEASIBLE_TAG, reason)
        mlflow.MlflowClient().set_tag(run_id, INFEASIBLE_TAG, reason)
    return values


def measured(search: SearchConfig, run_id: str, validation: dict[str, float], who: str) -> tuple[list[float], list[float]]:
    """(each objective's value, each constraint's value in Optuna's convention) as run `run_id` logged them; a
    validation metric is the kept evaluation's (`validation`), a metric only its seeds' runs logged is their mean.
    A metric none of them logged is a `ConfigError`."""
    logged = {**_seeds_mean(run_id), **_run_metrics(run_id), **validation}

    def value(path: str, metric: str) -> float:
        if metric not in logged:
            raise ConfigError(f"{path}: {who}'s run logged no '{metric}'; it logged {', '.join(sorted(logged))}")
        return float(logged[metric])

    values = [value(f"search.objectives[{i}].metric", o.metric) for i, o in enumerate(search.objectives)] or [
        value("search.metric", search.metric)
    ]
    violations = [c.violation(value(f"search.constraints[{i}].metric", c.metric)) for i, c in enumerate(search.constraints)]
    return values, violations


def _run_metrics(run_id: str) -> dict[str, float]:
    import mlflow

    return dict(mlflow.MlflowClient().get_run(run_id).data.metrics)


def _seeds_mean(run_id: str) -> dict[str, float]:
    """The mean of each metric over the seed runs nested under `run_id` (with `search.seeds_per_trial` > 1)."""
    import mlflow

    client = mlflow.MlflowClient()
    experiment = client.get_run(run_id).info.experiment_id
    seeds = client.search_runs([experiment], filter_string=f"tags.`{SEED_OF_TAG}` = '{run_id}'")
    names = {k for r in seeds for k in r.data.metrics}
    return {k: statistics.fmean(r.data.metrics[k] for r in seeds if k in r.data.metrics) for k in names}


def _record_result(trial: optuna.Trial, result: FinetuneResult | SeedsResult) -> None:
    """What the trial's attributes keep of its result: with several seeds, each seed's value and the run whose adapter
    stands for the trial; with early stopping, the trial-epochs it saved and the generalisation gap (the sweep's
    report and console show them)."""
    if isinstance(result, SeedsResult):
        trial.set_user_attr("seed_values", result.values)
        trial.set_user_attr(ADAPTER_RUN_ATTR, result.run_ids[0])  # registered: its adapter and test scores are one model's
        saved, gap = result.epochs_saved, result.gap
    elif result.stopping is not None:
        saved, gap = result.stopping.epochs_saved, result.stopping.gap
    else:
        return
    trial.set_user_attr(EPOCHS_SAVED_ATTR, saved)
    if gap is not None:
        trial.set_user_attr(GAP_ATTR, gap)


def _create_trial_run(
    trial: optuna.Trial,
    link: SweepLink,
    original: optuna.trial.FrozenTrial | None,
    retry_of: int | None,
    lost: optuna.trial.FrozenTrial | None,
    resume: Resume,
) -> ChildRun:
    """The trial's child run (not started), tagged with what it retries or duplicates; the trial records its run."""
    tags = {
        "optuna.study_name": trial.study.study_name,
        "optuna.trial_number": str(trial.number),
        WORKER_RUN_TAG: link.worker_run_id,
    }
    if retry_of is not None:
        tags |= {RETRY_OF_TAG: str(retry_of), **retry_tags(lost, resume)}
    if original is not None:
        tags |= {DUPLICATE_TAG: str(original.number), DUPLICATE_RUN_TAG: str(original.user_attrs[TRIAL_RUN_ATTR])}
    created = ChildRun.create(link.experiment_id, link.parent_run_id, f"trial-{trial.number}", tags)
    trial.set_user_attr(TRIAL_RUN_ATTR, created.run_id)
    trial.set_user_attr(TRIAL_WORKER_RUN_ATTR, link.worker_run_id)
    return created


def _reuse(trial: optuna.Trial, original: optuna.trial.FrozenTrial, run: ChildRun) -> list[float]:
    """Finish a duplicate of `original` without training: its run gets the original run's params and final metrics
    (`train_seconds` 0: it trained nothing, and holds no adapter), and Optuna is told the original's values (and
    its feasibility)."""
    import mlflow

    source = mlflow.MlflowClient().get_run(original.user_attrs[TRIAL_RUN_ATTR])
    with run.started():
        mlflow.log_params({**source.data.params, "trial_number": trial.number})
        mlflow.log_metrics({**source.data.metrics, "train_seconds": 0.0})
    trial.set_user_attr(DUPLICATE_OF_ATTR, original.number)
    trial.set_user_attr("test_metrics", original.user_attrs.get("test_metrics", {}))
    for attr in (CONSTRAINTS_ATTR, INFEASIBLE_TAG):
        if attr in original.user_attrs:
            trial.set_user_attr(attr, original.user_attrs[attr])
    if INFEASIBLE_TAG in original.user_attrs:
        mlflow.MlflowClient().set_tag(run.run_id, INFEASIBLE_TAG, original.user_attrs[INFEASIBLE_TAG])
    logger.info("trial %d: the configuration of trial %d again; its result reused, nothing trained", trial.number, original.number)
    return [float(v) for v in original.values or []]
