"""One configuration trained with several seeds: each seed is a nested MLflow run under the trial's (or a
confirmation's) run, which holds the seeds' mean, their standard deviation (`<metric>_sd`) and the running mean
that the pruner saw.

Nested runs, not the seed as a step dimension: each seed keeps its own curves on the steps its trainer logged
(train_loss per optimizer step, eval_* per epoch), its params, its adapter, and the MLflow UI shows them folded
under the trial; seeds sharing one run's steps would overlay as one zig-zag curve.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.tracking import ADAPTER_RUN_ATTR, GAP_ATTR, SEED_OF_TAG, TRIAL_RUN_ATTR, child_run, log_params_effective
from mlops.train import Prepared, run_params, train_and_log

if TYPE_CHECKING:
    import optuna

    from mlops.config import ExperimentConfig

RUNNING_MEAN_SUFFIX = "_running_mean"


@dataclass(frozen=True)
class SeedsResult:
    """Validation and test metrics averaged over the seeds; `spread`: `<name>_sd` of each validation metric."""

    validation: dict[str, float]
    test: dict[str, float]
    spread: dict[str, float]
    seeds: list[int]
    values: list[float]  # the search metric of each seed, in seed order
    run_ids: list[str]  # each seed's nested run; the first holds the adapter registered for the configuration
    epochs_saved: int = 0  # seed-epochs early stopping did not train, over all seeds
    gap: float | None = None  # the seeds' mean generalization_gap (with early stopping)


def adapter_run_id(trial: optuna.trial.FrozenTrial) -> str:
    """The run whose adapter stands for a trial: the trial's own, or with several seeds its first seed's."""
    return str(trial.user_attrs.get(ADAPTER_RUN_ATTR, trial.user_attrs.get(TRIAL_RUN_ATTR, "")))


def seeds_for(config: ExperimentConfig, count: int, offset: int = 0) -> list[int]:
    """`count` training seeds from the config's `training.seed + offset` on."""
    return [config.training.seed + offset + i for i in range(count)]


def _mean_and_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def train_seeds(
    config: ExperimentConfig,
    prepared: Prepared,
    out_dir: Path,
    seeds: list[int],
    reporter: Callable[[float, int], None] | None = None,
    omit_params: Collection[str] = (),
) -> SeedsResult:
    """Train `config` once per seed, each in a nested run of the active run (with its adapter, test scores and
    curves), then log on the active run the hyperparameters, `seeds`, and every validation and test metric's mean
    over the seeds and `<name>_sd`. The first seed trains into `out_dir`, the others beside it; each seed's run is
    named `<out_dir's name>-seed-<seed>`, as are the folders beside it.

    `reporter` gets, after each seed's epoch e, the running mean of the search metric at epoch e over the seeds
    trained so far, at step = seed-epochs spent: every trial reaches a step with the same compute, so pruners
    compare like with like, and a pruned trial stops in the middle of a seed.
    """
    import mlflow
    import optuna

    client = mlflow.MlflowClient()
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("train_seeds logs under the active run; start the trial's run first")
    parent_id, experiment_id, run_name = active.info.run_id, active.info.experiment_id, out_dir.name
    metric, epochs = config.search.metric, config.training.epochs
    curves: list[list[float]] = []
    results, run_ids = [], []
    for index, seed in enumerate(seeds):
        curve: list[float] = []
        curves.append(curve)

        def report(value: float, epoch: int, index: int = index, curve: list[float] = curve) -> None:
            if epoch <= len(curve):
                return
            curve.append(value)
            running = statistics.fmean(c[epoch - 1] for c in curves if len(c) >= epoch)
            step = index * epochs + epoch
            client.log_metric(parent_id, metric + RUNNING_MEAN_SUFFIX, running, step=step)
            if reporter is not None:
                reporter(running, step)

        where = out_dir if index == 0 else out_dir.with_name(f"{out_dir.name}-seed-{seed}")
        name = f"{run_name}-seed-{seed}"
        with child_run(experiment_id, parent_id, name, {SEED_OF_TAG: parent_id}, killed_by=(optuna.TrialPruned,)) as run:
            run_ids.append(run.info.run_id)
            results.append(train_and_log(config.with_params({"seed": seed}), prepared, where, reporter=report, omit_params=omit_params))
    validation, test, spread = {}, {}, {}
    for name in results[0].validation:
        validation[name], spread[f"{name}_sd"] = _mean_and_sd([r.validation[name] for r in results])
    for name in results[0].test:
        test[name] = statistics.fmean(r.test[name] for r in results)
    params = run_params(config.with_params({"seed": seeds[0]}), omit_params)
    log_params_effective({**params, "seeds": ",".join(map(str, seeds))})
    stopped = [r.stopping for r in results if r.stopping is not None]
    gaps = [s.gap for s in stopped if s.gap is not None]
    gap = statistics.fmean(gaps) if gaps else None
    stopping = {"epochs_run": float(sum(s.epochs_run for s in stopped))} if stopped else {}
    if gap is not None:
        stopping[GAP_ATTR] = gap
    cost = results[0].cost  # the first seed's adapter stands for the configuration: its serving cost is the trial's
    mlflow.log_metrics({**validation, **spread, **test, **stopping, **cost, "train_seconds": sum(r.train_seconds for r in results)})
    values = [r.validation[metric] for r in results]
    return SeedsResult(validation, test, spread, list(seeds), values, run_ids, sum(s.epochs_saved for s in stopped), gap)
