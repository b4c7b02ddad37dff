"""Turn the YAML search space into Optuna suggestions and seeded samplers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.config import ParamSpace, SearchConfig
from mlops.errors import ConfigError

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid")


def suggest(trial: optuna.Trial, space: dict[str, ParamSpace]) -> dict[str, Any]:
    """One value per hyperparameter, named as in `finetune`'s overrides."""
    values: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "categorical":
            values[name] = trial.suggest_categorical(name, p.choices or [])
        elif p.type == "int":
            step = int(p.step) if p.step else 1
            values[name] = trial.suggest_int(name, int(p.low or 0), int(p.high or 0), step=step, log=p.log)
        else:
            values[name] = trial.suggest_float(name, float(p.low or 0), float(p.high or 0), log=p.log, step=p.step)
    return values


def make_sampler(name: str, search: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        grid = {k: p.grid_values() for k, p in search.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"sampler: must be one of {', '.join(SAMPLERS)}, got {name!r}")


def grid_size(search: SearchConfig) -> int:
    size = 1
    for p in search.space.values():
        size *= len(p.grid_values())
    return size
