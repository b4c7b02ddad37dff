"""Confirmation against the winner's curse: after the search, its `search.confirm_top_k` best trials by the selection
rule (with several objectives: of the Pareto front) are re-trained with `search.confirm_seeds` fresh seeds, each in a
child run of the sweep's parent tagged `mlops.confirmation_of`; the rule, applied to the confirmed means, chooses the
trial registered, not the luckiest single score."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import ConfigError, SweepError
from mlops.search.seeds import seeds_for, train_seeds
from mlops.search.selection import Selection, confirmation_candidates, objective_values, select
from mlops.search.space import trial_budget
from mlops.search.trial import SweepLink, measured
from mlops.tracking import (
    CONFIRMATION_ARTIFACT,
    CONFIRMATION_RUN_TAG,
    CONFIRMATION_TAG,
    CONFIRMED_WINNER_TAG,
    CONSTRAINTS_ATTR,
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

# study attr: trial number -> [confirmed means (one per objective; a number from an earlier release), confirmation run id,
# constraint values]
CONFIRMED_ATTR = "mlops_confirmed"


def check_confirmation(search: SearchConfig) -> None:
    """`confirm_top_k` larger than the trials the search will run (a grid smaller than `n_trials`) is a config error."""
    budget = trial_budget(search)
    if search.confirm_top_k > budget:
        raise ConfigError(f"search.confirm_top_k: cannot confirm {search.confirm_top_k} trials when the search runs {budget}")


def _confirm_one(
    trial: optuna.trial.FrozenTrial, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink
) -> list[Any]:
    """Re-train `trial`'s configuration with the fresh seeds in a child run of the parent: its confirmed means (one
    per objective), its run and its constraint values."""
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
    values, violations = measured(config.search, run.info.run_id, result.validation, f"confirmation of trial {trial.number}")
    return [values, run.info.run_id, violations]


def _as_confirmed(trial: optuna.trial.FrozenTrial, entry: list[Any]) -> optuna.trial.FrozenTrial:
    """`trial` with its confirmed means as its values (and the confirmation's constraint values)."""
    confirmed = copy.deepcopy(trial)
    means = entry[0]
    confirmed.values = [float(v) for v in means] if isinstance(means, list) else [float(means)]
    confirmed.user_attrs = {**trial.user_attrs, CONSTRAINTS_ATTR: list(entry[2]) if len(entry) > 2 else []}
    return confirmed


def confirm_best(study: optuna.Study, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink) -> Selection:
    """Confirm the study's best trials by the selection rule (each once: a resumed study reuses earlier
    confirmations), log both winners on the active (parent) run, and return the rule's choice among the confirmed
    means."""
    import mlflow

    search = config.search
    objectives = search.objective_list()
    metric = objectives[0].metric
    top = confirmation_candidates(study.trials, search)
    confirmed: dict[str, list[Any]] = dict(study.user_attrs.get(CONFIRMED_ATTR, {}))
    for trial in top:
        if str(trial.number) not in confirmed:
            confirmed[str(trial.number)] = _confirm_one(trial, config, prepared, scratch, link)
            study.set_user_attr(CONFIRMED_ATTR, confirmed)
            logger.info("trial %d confirmed: %s over %d fresh seeds", trial.number, confirmed[str(trial.number)][0], search.confirm_seeds)
    again = [_as_confirmed(t, confirmed[str(t.number)]) for t in top]
    try:
        chosen = select(again, search)
    except SweepError:  # every confirmation broke a constraint: the search's choice stands
        logger.warning("every confirmed trial broke search.constraints; keeping the search's choice, trial %d", top[0].number)
        chosen = Selection(again[0], "search", "every confirmed trial broke search.constraints; the search's choice stands")
    winner = next(t for t in top if t.number == chosen.trial.number)
    first, best = objective_values(again[0], objectives), objective_values(chosen.trial, objectives)
    mlflow.log_metrics(
        {
            "search_best_trial_number": top[0].number,
            f"search_best_confirmed_{metric}": first[metric],
            "confirmed_best_trial_number": winner.number,
            f"confirmed_best_{metric}": best[metric],
            "confirmation_changed_winner": float(winner.number != top[0].number),
        }
    )
    mlflow.set_tags({SEARCH_WINNER_TAG: str(top[0].number), CONFIRMED_WINNER_TAG: str(winner.number)})
    names = [o.metric for o in objectives]
    columns = ["trial", *(f"search_{m}" for m in names), *(f"confirmed_{m}" for m in names), "confirmation_run_id"]
    rows = [
        [t.number, *objective_values(t, objectives).values(), *objective_values(c, objectives).values(), str(confirmed[str(t.number)][1])]
        for t, c in zip(top, again, strict=True)
    ]
    mlflow.log_dict({"columns": columns, "data": rows}, CONFIRMATION_ARTIFACT)
    reason = f"by the means over {search.confirm_seeds} fresh seeds of the {len(top)} confirmed trials: {chosen.reason}"
    return Selection(winner, chosen.rule, reason)
