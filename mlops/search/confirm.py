"""Confirmation against the winner's curse: after the search, its `search.confirm_top_k` best trials are re-trained
with `search.confirm_seeds` fresh seeds, each in a child run of the sweep's parent tagged `mlops.confirmation_of`;
the trial with the best confirmed mean is the one registered, not the luckiest single score."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.errors import ConfigError
from mlops.search.duplicates import DUPLICATE_OF_ATTR
from mlops.search.seeds import seeds_for, train_seeds
from mlops.search.space import trial_budget
from mlops.search.trial import SweepLink
from mlops.tracking import (
    CONFIRMATION_ARTIFACT,
    CONFIRMATION_RUN_TAG,
    CONFIRMATION_TAG,
    CONFIRMED_WINNER_TAG,
    SEARCH_WINNER_TAG,
    TRIAL_RUN_ATTR,
    WORKER_RUN_TAG,
    child_run,
)
from mlops.train import Prepared

if TYPE_CHECKING:
    import optuna

    from mlops.config import ExperimentConfig, SearchConfig

logger = logging.getLogger(__name__)

CONFIRMED_ATTR = "mlops_confirmed"  # study attr: trial number -> [confirmed mean, confirmation run id]


def check_confirmation(search: SearchConfig) -> None:
    """`confirm_top_k` larger than the trials the search will run (a grid smaller than `n_trials`) is a config error."""
    budget = trial_budget(search)
    if search.confirm_top_k > budget:
        raise ConfigError(f"search.confirm_top_k: cannot confirm {search.confirm_top_k} trials when the search runs {budget}")


def ranked_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """COMPLETE trials that trained (duplicates left out), best first in the study's direction."""
    import optuna

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if DUPLICATE_OF_ATTR not in t.user_attrs and t.value is not None
    ]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(done, key=lambda t: float(t.value or 0.0), reverse=maximize)


def _confirm_one(
    trial: optuna.trial.FrozenTrial, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink
) -> tuple[float, str]:
    """Re-train `trial`'s configuration with the fresh seeds in a child run of the parent; its confirmed mean and run."""
    import mlflow

    trial_config = config.with_params(trial.params)
    seeds = seeds_for(trial_config, config.search.confirm_seeds, offset=config.search.seeds_per_trial)  # none the search used
    tags = {
        CONFIRMATION_TAG: str(trial.number),
        CONFIRMATION_RUN_TAG: str(trial.user_attrs.get(TRIAL_RUN_ATTR, "")),
        WORKER_RUN_TAG: link.worker_run_id,
    }
    name = f"confirm-trial-{trial.number}"
    with child_run(link.experiment_id, link.parent_run_id, name, tags) as run:
        mlflow.log_param("confirmation_of_trial", trial.number)
        omit = trial_config.inapplicable(config.search.space)
        result = train_seeds(trial_config, prepared, scratch / name, seeds, omit_params=omit)
    return result.validation[config.search.metric], run.info.run_id


def confirm_best(
    study: optuna.Study, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink
) -> optuna.trial.FrozenTrial:
    """Confirm the study's best trials (each once: a resumed study reuses earlier confirmations), log both winners on
    the active (parent) run, and return the trial with the best confirmed mean."""
    import mlflow

    metric, search = config.search.metric, config.search
    top = ranked_trials(study)[: search.confirm_top_k]
    confirmed: dict[str, list[float | str]] = dict(study.user_attrs.get(CONFIRMED_ATTR, {}))
    for trial in top:
        if str(trial.number) not in confirmed:
            mean, run_id = _confirm_one(trial, config, prepared, scratch, link)
            confirmed[str(trial.number)] = [mean, run_id]
            study.set_user_attr(CONFIRMED_ATTR, confirmed)
            logger.info("trial %d confirmed: %s=%.4f over %d fresh seeds", trial.number, metric, mean, search.confirm_seeds)
    sign = 1.0 if search.direction == "maximize" else -1.0
    winner = max(top, key=lambda t: sign * float(confirmed[str(t.number)][0]))
    changed = winner.number != top[0].number
    mlflow.log_metrics(
        {
            "search_best_trial_number": top[0].number,
            f"search_best_confirmed_{metric}": float(confirmed[str(top[0].number)][0]),
            "confirmed_best_trial_number": winner.number,
            f"confirmed_best_{metric}": float(confirmed[str(winner.number)][0]),
            "confirmation_changed_winner": float(changed),
        }
    )
    mlflow.set_tags({SEARCH_WINNER_TAG: str(top[0].number), CONFIRMED_WINNER_TAG: str(winner.number)})
    rows = [[t.number, t.value, float(confirmed[str(t.number)][0]), str(confirmed[str(t.number)][1])] for t in top]
    columns = ["trial", f"search_{metric}", f"confirmed_{metric}", "confirmation_run_id"]
    mlflow.log_dict({"columns": columns, "data": rows}, CONFIRMATION_ARTIFACT)
    return winner
