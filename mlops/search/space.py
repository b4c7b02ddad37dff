"""Turn the YAML search space into Optuna suggestions (only of the settings that apply) and seeded samplers."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops.config import (
    CONSTRAINED_SAMPLERS,
    ParamSpace,
    SearchConfig,
    applies,
    conditions,
    dependency_order,
    depends_on_searched,
    describe,
    holds,
)
from mlops.errors import ConfigError
from mlops.tracking import CONSTRAINTS_ATTR

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid", "cmaes", "qmc", "gp", "nsgaii")
PRUNERS = ("none", "median", "hyperband")
# The guide: random search needs 50 or more samples once the space has more than 5 dimensions.
RANDOM_MIN_TRIALS, RANDOM_MANY_DIMS = 50, 5

logger = logging.getLogger(__name__)


def suggest(trial: optuna.Trial, space: dict[str, ParamSpace], settings: Mapping[str, Any]) -> dict[str, Any]:
    """One value per setting of `space` that applies, named as in `finetune`'s overrides (Optuna's define-by-run
    conditional space): a setting whose condition fails is not drawn at all.

    Conditions are tested against the values drawn so far, or for a setting that is not searched, its value in
    `settings` (the config's, `ExperimentConfig.tunable_values`); controlling settings are drawn first.
    """
    when = conditions(space)
    values = dict(settings)
    skipped: set[str] = set()
    drawn: dict[str, Any] = {}
    for name in dependency_order([*space, *when], when):
        if not applies(when.get(name, {}), values, skipped):
            skipped.add(name)
        elif name in space:
            drawn[name] = values[name] = _suggest_one(trial, name, space[name])
    return drawn


def never_drawn(space: dict[str, ParamSpace], settings: Mapping[str, Any]) -> list[str]:
    """Why settings of `space` will never be drawn: their condition fails on a setting the space does not search
    (e.g. `temperature` with `generation.decoding: greedy` fixed). Not a config error: `finetune` overrides may
    fix such a setting on a config made for a wider search."""
    when = conditions(space)
    return [
        f"search.space.{name} is never drawn: it applies only when {controller} {describe(test)}, and {controller} is "
        f"{settings[controller]!r} (not searched)"
        for name in space
        for controller, test in when.get(name, {}).items()
        if controller not in space and not holds(test, settings[controller])
    ]


def _suggest_one(trial: optuna.Trial, name: str, p: ParamSpace) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(name, p.choices or [])
    if p.type == "int":
        step = int(p.step) if p.step else 1
        return trial.suggest_int(name, int(p.low or 0), int(p.high or 0), step=step, log=p.log)
    return trial.suggest_float(name, float(p.low or 0), float(p.high or 0), log=p.log, step=p.step)


def constraints_func(search: SearchConfig) -> Callable[[optuna.trial.FrozenTrial], Sequence[float]] | None:
    """What samplers that model constraints (`CONSTRAINED_SAMPLERS`) are told of `search.constraints`: the values
    each trial recorded (a trial pruned before it could measure them: none broken). None without constraints."""
    if not search.constraints:
        return None
    kept = [0.0] * len(search.constraints)

    def values(trial: optuna.trial.FrozenTrial) -> Sequence[float]:
        return [float(v) for v in trial.user_attrs.get(CONSTRAINTS_ATTR, kept)]

    return values


def make_sampler(name: str, search: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    startup = min(10, max(2, search.n_trials // 3))  # Optuna's default of 10 random ones would make a short sweep a random search
    constrained: dict[str, Any] = {"constraints_func": constraints_func(search)} if name in CONSTRAINED_SAMPLERS else {}
    with warnings.catch_warnings():  # `constraints_func` is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            if not depends_on_searched(search.space, conditions(search.space)):
                return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, **constrained)
            # a conditional space: model the settings that are drawn together jointly, one group per sub-space
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, group=True, **constrained)
        if name == "nsgaii":  # the genetic multi-objective sampler; a generation is at most a third of the trials
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, min(50, search.n_trials // 3)), **constrained)
        if name == "gp":  # Gaussian-process Bayesian optimisation (needs scipy and torch)
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False, **constrained)
    return _unconstrained_sampler(name, search, seed)


def _unconstrained_sampler(name: str, search: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "random":
        if len(search.space) > RANDOM_MANY_DIMS and search.n_trials < RANDOM_MIN_TRIALS:
            logger.warning(
                "random search over %d dimensions with %d trials: use %d or more, or the tpe sampler",
                len(search.space),
                search.n_trials,
                RANDOM_MIN_TRIALS,
            )
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":  # categorical parameters fall back to independent (random) sampling
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":

        class GridSampler(optuna.samplers.GridSampler):
            """Optuna's grid sampler, minus its `study.stop()` when the grid is done: that only works
            inside `study.optimize`, and our loop stops at the budget, capped by `grid_size`."""

            def after_trial(self, *args: Any, **kwargs: Any) -> None:
                return None

        return GridSampler({k: p.grid_values() for k, p in search.space.items()}, seed=seed)
    raise ConfigError(f"sampler: must be one of {', '.join(SAMPLERS)}, got {name!r}")


def grid_size(search: SearchConfig) -> int:
    return math.prod(len(p.grid_values()) for p in search.space.values())


def trial_budget(search: SearchConfig) -> int:
    """`n_trials`, except that a grid search runs each point once: at most the grid's size."""
    if search.sampler == "grid" and search.n_trials > grid_size(search):
        return grid_size(search)
    return search.n_trials


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """Pruners act on the validation metric reported once per epoch (step = epoch number)."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 1), reduction_factor=3)
    raise ConfigError(f"pruner: must be one of {', '.join(PRUNERS)}, got {name!r}")
