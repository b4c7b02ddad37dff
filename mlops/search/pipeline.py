"""The staged tuning practice as one MLflow run (`main`): data, then hyperparameters, then structure,
then evaluate and promote. One parent run, one child run per stage; the sweeps' trials nest under
their stage. The data stage searches the training-data augmentation (`augment.*`; `synonym_p` is drawn only with
`multiplier > 0`, and a repeat of a configuration already run reuses its result); its winning settings, then the
hyperparameter stage's, are fixed for the stages after it.

The trial budget (and the optional time budget) is split between the stages by
`pipeline.fractions` (the guide's 70/20/10 by default), and the split actually used is logged
next to the planned one.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops.config import AUGMENT_PARAMETERS, STRUCTURE_PARAMETERS, ExperimentConfig, ParamSpace
from mlops.errors import ConfigError, GateFailed
from mlops.registry import policy_for
from mlops.search.console import SweepConsole
from mlops.search.registration import register_and_gate
from mlops.search.report import log_selection
from mlops.search.selection import Selection, select
from mlops.search.sweep import SweepOptions, SweepResult, run_sweep
from mlops.tracking import ENTRY_POINT_TAG, STAGE_SKIPPED_TAG, STAGE_TAG, ended, entry_run, log_environment, log_params_effective
from mlops.train import log_data_checks, prepare

logger = logging.getLogger(__name__)

DATA_STAGE_EMPTY = "no trials left for the data stage (pipeline.fractions.data is 0 or pipeline.n_trials too small)"
DEFAULT_DATA_SPACE = {  # synonym_p applies only with multiplier > 0 (built in): multiplier 0 is one configuration
    "augment.multiplier": ParamSpace(type="int", low=0, high=2),
    "augment.synonym_p": ParamSpace(type="float", low=0.0, high=0.3),
}
DEFAULT_STRUCTURE_SPACE = {
    "lora_r": ParamSpace(type="categorical", choices=[4, 8, 16]),
    "lora_alpha": ParamSpace(type="categorical", choices=[8, 16, 32]),
}


@dataclass
class PipelineOptions:
    storage: str | None = None
    study_name: str | None = None  # stage studies are <name>-hyperparameters and <name>-structure
    promote: bool = True
    console: SweepConsole | None = None  # shows each stage's sweep


@dataclass
class PipelineResult:
    run_id: str
    budget: dict[str, int]
    stages: dict[str, SweepResult]
    winner: str  # the stage whose best trial was promoted
    registered_version: str | None


def split_budget(total: int, fractions: dict[str, float], runnable: set[str]) -> dict[str, int]:
    """Trials per stage: `total` split by `fractions` over the runnable stages (largest remainder).

    Every runnable stage with a positive fraction gets at least one trial; others get 0.
    """
    active = {s: f for s, f in fractions.items() if s in runnable and f > 0}
    weight = sum(active.values())
    exact = {s: total * f / weight for s, f in active.items()}
    out = {s: max(1, int(x)) for s, x in exact.items()}
    for stage in sorted(exact, key=lambda s: exact[s] - int(exact[s]), reverse=True):
        if sum(out.values()) >= total:
            break
        out[stage] += 1
    while sum(out.values()) > total:  # the minimum of one per stage overshot: take from the largest
        largest = max(out, key=lambda s: out[s])
        out[largest] -= 1
    return {s: out.get(s, 0) for s in fractions}


def stage_spaces(config: ExperimentConfig) -> tuple[dict[str, ParamSpace], dict[str, ParamSpace]]:
    """(hyperparameter space, structure space): structural and augmentation keys move out of `search.space`."""
    hp = {k: v for k, v in config.search.space.items() if k not in STRUCTURE_PARAMETERS and k not in AUGMENT_PARAMETERS}
    structure = (
        dict(config.pipeline.structure_space)
        or {k: v for k, v in config.search.space.items() if k in STRUCTURE_PARAMETERS}
        or dict(DEFAULT_STRUCTURE_SPACE)
    )
    if not hp:
        raise ConfigError(f"search.space: the hyperparameter stage needs a parameter other than {', '.join(STRUCTURE_PARAMETERS)}")
    return hp, structure


def data_stage_space(config: ExperimentConfig) -> dict[str, ParamSpace]:
    """The augmentation settings the data stage searches: `pipeline.data_space`, else the `augment.*` keys of
    `search.space`, else synonym_p 0..0.3 and multiplier 0..2 (the methods: `augment.methods`, or the default ones)."""
    return (
        dict(config.pipeline.data_space)
        or {k: v for k, v in config.search.space.items() if k in AUGMENT_PARAMETERS}
        or dict(DEFAULT_DATA_SPACE)
    )


def _stage_config(
    config: ExperimentConfig, space: dict[str, ParamSpace], n_trials: int, timeout: float | None, fixed: dict[str, Any] | None = None
) -> ExperimentConfig:
    """The config of one searching stage: its space and budget, with earlier stages' winners fixed."""
    search = replace(config.search, space=space, n_trials=n_trials, timeout=timeout)
    return config.with_params(fixed or {}, search=search)


def _stage_options(options: PipelineOptions, study_name: str, run_name: str) -> SweepOptions:
    """A stage's sweep: nested under `main`'s run, registering nothing, on the pipeline's storage and console."""
    return SweepOptions(options.storage, study_name, promote=False, nested=True, run_name=run_name, console=options.console)


def winning_stage(stages: dict[str, SweepResult], config: ExperimentConfig) -> str:
    """The stage whose chosen trial `search.select` chooses among the stages' (a tie goes to the earlier stage),
    logged on the active run with the rule's reason."""
    picks = {stage: result.selected for stage, result in stages.items() if result.selected is not None}
    selection = select(list(picks.values()), config.search)
    winner = next(stage for stage, trial in picks.items() if trial is selection.trial)
    log_selection(Selection(selection.trial, selection.rule, f"stage {winner}: {selection.reason} (each stage's choice)"))
    return winner


def run_main(config: ExperimentConfig, options: PipelineOptions) -> PipelineResult:
    """Run the stages under one parent run and promote the best adapter found by any of them."""
    import mlflow

    hp_space, structure_space = stage_spaces(config)
    runnable = {"data", "hyperparameters", "structure"}
    budget = split_budget(config.pipeline.n_trials, config.pipeline.fractions, runnable)
    total_timeout = config.pipeline.timeout
    timeouts = {s: total_timeout * n / config.pipeline.n_trials if total_timeout else None for s, n in budget.items()}
    data_config = _stage_config(config, data_stage_space(config), budget["data"], timeouts["data"])
    policy = policy_for(config) if options.promote else None
    prepared = prepare(data_config if budget["data"] else config)  # bad input (WordNet too) fails here, before any run
    base = options.study_name or f"{config.name}-main-{uuid.uuid4().hex[:8]}"
    stages: dict[str, SweepResult] = {}
    failed: GateFailed | None = None
    with entry_run(config.mlflow_experiment, f"main-{config.name}", tags={ENTRY_POINT_TAG: "main"}) as run:
        log_params_effective(
            {
                "config": config.name,
                "n_trials": config.pipeline.n_trials,
                "timeout": total_timeout or "none",
                "seed": config.training.seed,
                "study_name": base,
                **{f"fraction_{s}": f for s, f in config.pipeline.fractions.items()},
                **{f"budget_{s}": n for s, n in budget.items()},
            }
        )
        mlflow.log_artifact(config.source_file, "config")
        log_environment()
        log_data_checks(prepared)

        fixed: dict[str, Any] = {}  # each stage's winning values, fixed for the stages after it
        if budget["data"]:
            stages["data"] = run_sweep(data_config, _stage_options(options, f"{base}-data", "stage-1-data"), prepared)
            fixed |= stages["data"].best_params
        else:
            with ended(mlflow.start_run(run_name="stage-1-data", nested=True, tags={STAGE_TAG: "data"})):
                mlflow.set_tag(STAGE_SKIPPED_TAG, DATA_STAGE_EMPTY)
                logger.warning("stage data: skipped: %s", DATA_STAGE_EMPTY)

        hp_config = _stage_config(config, hp_space, budget["hyperparameters"], timeouts["hyperparameters"], fixed)
        stages["hyperparameters"] = run_sweep(
            hp_config,
            _stage_options(options, f"{base}-hyperparameters", "stage-2-hyperparameters"),
            prepared,
        )
        fixed |= stages["hyperparameters"].best_params
        structure_config = _stage_config(config, structure_space, budget["structure"], timeouts["structure"], fixed)
        stages["structure"] = run_sweep(
            structure_config,
            _stage_options(options, f"{base}-structure", "stage-3-structure"),
            prepared,
        )
        mlflow.set_tags({f"fixed.{k}": str(v) for k, v in fixed.items()})

        winner = winning_stage(stages, config)
        best = stages[winner]
        version = None
        scores = {
            **{f"best_{k}": v for k, v in best.best_values.items()},
            **{f"best_{k}": v for k, v in _test_metrics(best.best_run_id).items()},
        }
        outcome = {"winner_stage": winner, "winner_run_id": best.best_run_id}
        with ended(mlflow.start_run(run_name="stage-4-evaluate-promote", nested=True, tags={STAGE_TAG: "promote"})):
            mlflow.log_metrics(scores)
            mlflow.set_tags(outcome)
            if policy is not None:
                with tempfile.TemporaryDirectory(prefix="mlops-main-") as tmp:
                    version, _, failed = register_and_gate(config, policy, best.best_run_id, best.best_trial, run.info.run_id, Path(tmp))
        mlflow.log_metrics(scores)
        mlflow.set_tags(outcome)
    if failed is not None:
        raise failed
    return PipelineResult(run.info.run_id, budget, stages, winner, version)


def _test_metrics(run_id: str) -> dict[str, float]:
    import mlflow

    metrics: dict[str, float] = mlflow.MlflowClient().get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith("test_")}
