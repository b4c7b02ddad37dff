"""Which trial a sweep chooses, by one rule (`search.select`) wherever a winner is picked: the summary, confirmation,
registration and `main`'s stages. Pure functions of the trials' objective values and constraint values.

Rules: `best:<metric>` (the default: the first objective's best), `knee` (the Pareto front's point nearest the ideal
point once each objective is scaled to 0..1 over the front) and `{within: {metric, of_best, then}}` (the best trial
by `then` among those whose `metric` is within `of_best` of the best). Only feasible trials (every constraint kept)
that trained (not duplicates) are candidates; ties go to the trial that comes first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.config import Objective, SearchConfig, SelectWithin
from mlops.errors import SweepError
from mlops.search.duplicates import DUPLICATE_OF_ATTR
from mlops.tracking import CONSTRAINTS_ATTR

if TYPE_CHECKING:
    import optuna

    Trials = Sequence[optuna.trial.FrozenTrial]


@dataclass(frozen=True)
class Selection:
    """The chosen trial, the rule that chose it (`best:<metric>`, `knee` or `within`) and why, in words."""

    trial: optuna.trial.FrozenTrial
    rule: str
    reason: str


def objective_values(trial: optuna.trial.FrozenTrial, objectives: Sequence[Objective]) -> dict[str, float]:
    """The trial's value of each objective, by metric name."""
    values = trial.values or []
    return {o.metric: float(v) for o, v in zip(objectives, values, strict=False)}


def feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """True unless one of the trial's constraint values (Optuna's convention: > 0 is a broken bound) is positive."""
    return not any(float(v) > 0 for v in trial.user_attrs.get(CONSTRAINTS_ATTR, []))


def candidates(trials: Trials) -> list[optuna.trial.FrozenTrial]:
    """COMPLETE trials that trained (duplicates left out) with values and every constraint kept, in their order."""
    return [
        t for t in trials if t.state.name == "COMPLETE" and t.values is not None and DUPLICATE_OF_ATTR not in t.user_attrs and feasible(t)
    ]


def _signed(trial: optuna.trial.FrozenTrial, objectives: Sequence[Objective], metric: str) -> float:
    """The trial's value of `metric`, signed so that lower is better."""
    objective = next(o for o in objectives if o.metric == metric)
    value = objective_values(trial, objectives)[metric]
    return value if objective.sense == "minimize" else -value


def dominates(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial, objectives: Sequence[Objective]) -> bool:
    """`a` is no worse than `b` in every objective and better in one."""
    pairs = [(_signed(a, objectives, o.metric), _signed(b, objectives, o.metric)) for o in objectives]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def pareto_front(trials: Trials, objectives: Sequence[Objective]) -> list[optuna.trial.FrozenTrial]:
    """The candidates (see `candidates`) that no other candidate dominates, in their order."""
    pool = candidates(trials)
    return [t for t in pool if not any(dominates(o, t, objectives) for o in pool if o is not t)]


def _best(trials: Trials, objectives: Sequence[Objective], metric: str) -> optuna.trial.FrozenTrial:
    return min(trials, key=lambda t: _signed(t, objectives, metric))  # min keeps the first of equals


def _best_by(pool: Trials, search: SearchConfig, metric: str) -> Selection:
    objectives = search.objective_list()
    best = _best(pool, objectives, metric)
    value = objective_values(best, objectives)[metric]
    word = "highest" if next(o for o in objectives if o.metric == metric).sense == "maximize" else "lowest"
    reason = f"trial {best.number} has the {word} {metric} ({value:.4g}) of {len(pool)} feasible trials"
    return Selection(best, f"best:{metric}", reason)


def _knee(pool: Trials, search: SearchConfig) -> Selection:
    objectives = search.objective_list()
    front = pareto_front(pool, objectives)
    signed = {id(t): [_signed(t, objectives, o.metric) for o in objectives] for t in front}  # `main` mixes studies: numbers repeat
    lows = [min(v[i] for v in signed.values()) for i in range(len(objectives))]
    highs = [max(v[i] for v in signed.values()) for i in range(len(objectives))]

    def distance(trial: optuna.trial.FrozenTrial) -> float:
        scaled = [(v - lo) / (hi - lo) if hi > lo else 0.0 for v, lo, hi in zip(signed[id(trial)], lows, highs, strict=True)]
        return math.hypot(*scaled)

    knee = min(front, key=distance)
    names = ", ".join(o.metric for o in objectives)
    reason = (
        f"trial {knee.number} is the point of the Pareto front ({len(front)} trials) nearest the ideal point, at distance "
        f"{distance(knee):.3f} with {names} each scaled to 0..1 over the front"
    )
    return Selection(knee, "knee", reason)


def _within(pool: Trials, search: SearchConfig, rule: SelectWithin) -> Selection:
    objectives = search.objective_list()
    metric, then, margin = rule.within.metric, rule.within.then, rule.within.of_best
    best = _best(pool, objectives, metric)
    top = _signed(best, objectives, metric)
    close = [t for t in pool if _signed(t, objectives, metric) - top <= margin + 1e-12]
    chosen = min(close, key=lambda t: (_signed(t, objectives, then), _signed(t, objectives, metric)))
    values = objective_values(chosen, objectives)
    reason = (
        f"trial {chosen.number} has the best {then} ({values[then]:.4g}) of the {len(close)} feasible trials whose {metric} "
        f"is within {margin:g} of the best ({objective_values(best, objectives)[metric]:.4g}, trial {best.number}); "
        f"its {metric} is {values[metric]:.4g}"
    )
    return Selection(chosen, "within", reason)


def select(trials: Trials, search: SearchConfig) -> Selection:
    """The trial `search.select` chooses among the candidates of `trials`; `SweepError` if there is none."""
    pool = candidates(trials)
    if not pool:
        infeasible = sum(t.state.name == "COMPLETE" and not feasible(t) for t in trials)
        why = f" ({infeasible} completed but broke search.constraints)" if infeasible else "; see the child runs' 'error' tags"
        raise SweepError(f"no feasible trial completed{why}")
    rule = search.selection_rule
    if isinstance(rule, SelectWithin):
        return _within(pool, search, rule)
    if rule == "knee":
        return _knee(pool, search)
    return _best_by(pool, search, rule.removeprefix("best:"))


def ranked(trials: Trials, search: SearchConfig) -> list[optuna.trial.FrozenTrial]:
    """The candidates in the order the rule prefers them: its choice, then its choice among the rest, and so on."""
    pool, order = candidates(trials), []
    rule = search.selection_rule
    if isinstance(rule, str) and rule.startswith("best:"):  # one sort, stable: equals keep their order
        return sorted(pool, key=lambda t: _signed(t, search.objective_list(), rule.removeprefix("best:")))
    while pool:
        chosen = select(pool, search).trial
        order.append(chosen)
        pool = [t for t in pool if t is not chosen]
    return order


def search_params(search: SearchConfig) -> dict[str, str]:
    """The objectives, constraints and selection rule as run params, where the config sets them."""
    params = {}
    if search.objectives:
        params["objectives"] = ", ".join(f"{o.metric} ({o.sense})" for o in search.objectives)
    if search.constraints:
        params["constraints"] = ", ".join(f"{c.metric} in [{c.min}, {c.max}]" for c in search.constraints)
    if search.select is not None:
        rule = search.select
        params["select"] = (
            rule if isinstance(rule, str) else f"within {rule.within.of_best:g} of the best {rule.within.metric}, then {rule.within.then}"
        )
    return params


def confirmation_candidates(trials: Trials, search: SearchConfig) -> list[optuna.trial.FrozenTrial]:
    """The `search.confirm_top_k` trials that confirmation re-trains: the best ones by the rule, and with several
    objectives the Pareto front's ones."""
    pool = pareto_front(trials, search.objective_list()) if search.multi_objective else list(trials)
    return ranked(pool, search)[: search.confirm_top_k]
