"""Selection rules, the Pareto front and the multi-objective config checks, on hand-made trials: pure and fast."""

from __future__ import annotations

import datetime
import io

import optuna
import pytest

from mlops.config import MULTI_OBJECTIVE_SAMPLERS, Constraint, Objective, ParamSpace, SearchConfig, SelectWithin, WithinRule, load_config
from mlops.errors import ConfigError, SweepError
from mlops.search.console import PlainConsole, SweepInfo
from mlops.search.selection import confirmation_candidates, pareto_front, ranked, select
from mlops.search.space import make_sampler
from mlops.tracking import CONSTRAINTS_ATTR, INFEASIBLE_TAG
from tests.helpers import TINY_CONFIG

OBJECTIVES = [Objective("eval_f1", "maximize"), Objective("latency", "minimize")]


def _trial(number: int, values: list[float] | None, state: str = "COMPLETE", **attrs: object) -> optuna.trial.FrozenTrial:
    start = datetime.datetime(2026, 1, 1)
    return optuna.trial.FrozenTrial(
        number=number,
        state=optuna.trial.TrialState[state],
        value=None,
        values=values,
        datetime_start=start,
        datetime_complete=start + datetime.timedelta(seconds=10),
        params={"lora_r": 4 * (number + 1)},
        distributions={"lora_r": optuna.distributions.CategoricalDistribution([4 * (n + 1) for n in range(8)])},
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def _study_trials() -> list[optuna.trial.FrozenTrial]:
    """(eval_f1, latency): 0-2 form the front, 3 is dominated by 1, 4 would dominate all but breaks a constraint,
    5 duplicates 1, 6 failed."""
    return [
        _trial(0, [0.80, 10.0]),
        _trial(1, [0.85, 20.0]),
        _trial(2, [0.90, 40.0]),
        _trial(3, [0.84, 25.0]),
        _trial(4, [0.95, 5.0], **{CONSTRAINTS_ATTR: [3.0], INFEASIBLE_TAG: "breaks search.constraints: latency"}),
        _trial(5, [0.85, 20.0], mlops_duplicate_of=1),
        _trial(6, None, "FAIL"),
    ]


def _search(select: str | SelectWithin | None = None) -> SearchConfig:
    return SearchConfig(objectives=list(OBJECTIVES), select=select)


def test_front_leaves_out_dominated_infeasible_duplicate_and_failed_trials() -> None:
    assert [t.number for t in pareto_front(_study_trials(), OBJECTIVES)] == [0, 1, 2]


@pytest.mark.parametrize(
    ("rule", "chosen", "words"),
    [
        ("best:eval_f1", 2, "highest eval_f1 (0.9) of 4 feasible trials"),
        ("best:latency", 0, "lowest latency (10) of 4 feasible trials"),
        ("knee", 1, "Pareto front (3 trials) nearest the ideal point, at distance 0.601"),
        (SelectWithin(WithinRule("eval_f1", 0.05, "latency")), 1, "best latency (20) of the 2 feasible trials whose eval_f1"),
        (SelectWithin(WithinRule("eval_f1", 0.01, "latency")), 2, "of the 1 feasible trials whose eval_f1 is within 0.01"),
    ],
)
def test_each_rule_chooses_and_says_why(rule: str | SelectWithin, chosen: int, words: str) -> None:
    selection = select(_study_trials(), _search(rule))
    assert selection.trial.number == chosen
    assert words in selection.reason, selection.reason
    assert selection.rule == (rule if isinstance(rule, str) else "within")


def test_the_infeasible_trial_would_win_every_rule_without_its_constraint() -> None:
    trials = _study_trials()
    trials[4].user_attrs = {}
    for rule in ("best:eval_f1", "best:latency", "knee"):
        assert select(trials, _search(rule)).trial.number == 4


def test_ties_go_to_the_first_trial_and_ranking_is_the_rule_repeated() -> None:
    trials = [_trial(0, [0.8, 10.0]), _trial(1, [0.9, 30.0]), _trial(2, [0.9, 20.0]), _trial(3, [0.7, 5.0])]
    assert select(trials, _search("best:eval_f1")).trial.number == 1
    assert [t.number for t in ranked(trials, _search("best:eval_f1"))] == [1, 2, 0, 3]
    assert [t.number for t in ranked(trials, _search("best:latency"))] == [3, 0, 2, 1]
    # within 0.1 of 0.9: trials 0, 1, 2; the cheapest is 0; then among 1, 2, 3 (best 0.9): 2 beats 1 on latency
    assert [t.number for t in ranked(trials, _search(SelectWithin(WithinRule("eval_f1", 0.1, "latency"))))][:2] == [0, 2]


def test_confirmation_takes_the_fronts_candidates_in_the_rules_order() -> None:
    search = _search("best:latency")
    search.confirm_top_k = 2
    assert [t.number for t in confirmation_candidates(_study_trials(), search)] == [0, 1]
    search.confirm_top_k = 5  # the front has 3: dominated trial 3 is never confirmed
    assert [t.number for t in confirmation_candidates(_study_trials(), search)] == [0, 1, 2]


def test_nothing_feasible_is_a_sweep_error_that_says_so() -> None:
    trials = [_trial(0, [0.8, 10.0], **{CONSTRAINTS_ATTR: [1.0]}), _trial(1, None, "PRUNED")]
    with pytest.raises(SweepError, match=r"no feasible trial completed \(1 completed but broke search.constraints\)"):
        select(trials, _search())


def test_one_objective_chooses_what_optuna_calls_best() -> None:
    study = optuna.create_study(direction="minimize")
    for value in (0.5, 0.3, 0.7, 0.3, 0.4):
        study.add_trial(optuna.trial.create_trial(value=value))
    search = SearchConfig(metric="eval_loss", direction="minimize")
    assert select(study.trials, search).trial.number == study.best_trial.number == 1
    assert [t.number for t in ranked(study.trials, search)] == [1, 3, 4, 0, 2]
    assert search.objective_list() == [Objective("eval_loss", "minimize")] and not search.multi_objective


def test_constraint_values_follow_optunas_convention() -> None:
    assert Constraint("latency", max=20.0).violation(25.0) == 5.0
    assert Constraint("latency", max=20.0).violation(15.0) == -5.0
    assert Constraint("eval_f1", min=0.8).violation(0.7) == pytest.approx(0.1)
    assert Constraint("x", min=1.0, max=2.0).violation(1.5) == -0.5


@pytest.mark.parametrize("sampler", ["tpe", "nsgaii", "gp"])
def test_samplers_that_model_constraints_are_told_the_recorded_values(sampler: str) -> None:
    search = SearchConfig(
        n_trials=6,
        sampler=sampler,
        objectives=list(OBJECTIVES),
        constraints=[Constraint("latency", max=20.0)],  # type: ignore[arg-type]
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, search, seed=1))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        latency = 40.0 * x
        trial.set_user_attr(CONSTRAINTS_ATTR, [Constraint("latency", max=20.0).violation(latency)])
        return x, latency

    study.optimize(objective, n_trials=6)
    for t in study.trials:
        assert t.system_attrs["constraints"] == (40.0 * t.params["x"] - 20.0,)  # Optuna stored what the trial recorded
    feasible = {t.number for t in study.best_trials}
    assert feasible and all(study.trials[n].params["x"] <= 0.5 for n in feasible), "Optuna's own front keeps the bound"


def test_multi_objective_config_refuses_samplers_and_pruners_naming_the_field(tmp_path: object) -> None:
    two = [{"metric": "eval_f1"}, {"metric": "eval_loss", "direction": "minimize"}]
    with pytest.raises(ConfigError) as refused:
        load_config(str(TINY_CONFIG), {"search.objectives": two, "search.sampler": "cmaes", "search.pruner": "median"})
    text = str(refused.value)
    assert "search.sampler: cmaes cannot optimise 2 objectives; use one of tpe, nsgaii, gp, random, qmc, grid" in text
    assert "search.pruner: Optuna cannot prune a study with 2 objectives; use pruner none" in text
    with pytest.raises(ConfigError, match=r"search.select: knee needs two or more objectives"):
        load_config(str(TINY_CONFIG), {"search.select": "knee"})
    with pytest.raises(ConfigError, match=r"search.select.within.then: 'latency' is not an objective"):
        load_config(
            str(TINY_CONFIG),
            {"search.objectives": two, "search.select": {"within": {"metric": "eval_f1", "of_best": 0.01, "then": "latency"}}},
        )
    with pytest.raises(ConfigError, match=r"search.constraints\[0\]: give max, min or both"):
        load_config(str(TINY_CONFIG), {"search.constraints": [{"metric": "eval_loss"}]})
    with pytest.raises(ConfigError) as incomplete:  # every problem of a half-written rule at once, none of it a crash
        load_config(str(TINY_CONFIG), {"search.objectives": [{"direction": "minimize"}], "search.select": {"within": {"metric": "x"}}})
    assert str(incomplete.value).endswith(
        "search.objectives[0].metric: required key is missing; search.select.within.of_best: required key is missing; "
        "search.select.within.then: required key is missing"
    )
    config = load_config(str(TINY_CONFIG), {"search.objectives": two, "search.select": "knee", "search.sampler": "nsgaii"})
    assert config.search.multi_objective and [o.direction for o in config.search.objective_list()] == ["maximize", "minimize"]


def test_an_objective_takes_its_metrics_direction_and_a_contradiction_or_an_unmeasured_cost_is_refused() -> None:
    plain = [{"metric": "eval_f1"}, {"metric": "infer_latency_ms_p95"}, {"metric": "eval_loss"}]
    config = load_config(str(TINY_CONFIG), {"search.objectives": plain})
    assert [o.direction for o in config.search.objectives] == ["maximize", "minimize", "minimize"], "latency is not maximised"
    wrong = [{"metric": "eval_f1"}, {"metric": "infer_latency_ms_p95", "direction": "maximize"}, {"metric": "trainable_params"}]
    with pytest.raises(ConfigError) as refused:
        bound = [{"metric": "serving_bytes", "max": 1}]
        load_config(str(TINY_CONFIG), {"search.objectives": wrong, "cost.examples": 0, "search.constraints": bound})
    text = str(refused.value)
    assert "search.objectives[1].direction: infer_latency_ms_p95 is better lower; use minimize or leave it out" in text
    assert "search.objectives[2].direction: 'trainable_params' is not a metric classification describes; say maximize or minimize" in text
    assert "search.objectives: infer_latency_ms_p95 is measured only with cost.examples > 0, and cost.examples is 0" in text
    assert "search.constraints: serving_bytes is measured only with cost.examples > 0" in text


def test_knee_keeps_trials_of_several_studies_apart_when_their_numbers_repeat() -> None:
    # `main` chooses among its stages' winners, each from its own study numbered from 0
    stages = [_trial(0, [0.80, 10.0]), _trial(0, [0.90, 40.0]), _trial(0, [0.86, 12.0])]
    chosen = select(stages, _search("knee"))
    assert chosen.trial is stages[2], "the front's point nearest the ideal, not whichever trial 0 was scored last"


def test_console_shows_the_fronts_size_and_the_selection_and_infeasible_trials() -> None:
    stream = io.StringIO()
    console = PlainConsole(stream)
    info = SweepInfo(
        "sweep-tiny", "tiny-1", 4, "eval_f1", "maximize", "parent123", "1", "sqlite:////tmp/x/mlflow.db", search=_search("knee")
    )
    console.sweep_started(info, [])
    for trial in _study_trials()[:5]:
        console.trial_finished(trial)
    lines = stream.getvalue().splitlines()
    assert "trials (0 finished before), eval_f1 (maximize), latency (minimize); parent run parent123" in lines[0]
    assert lines[1].startswith("trial 0 complete: eval_f1=0.8000, latency=10.0000 in 10.0 s")
    assert lines[2] == "selection: front of 1 trials; selected trial 0 by knee: eval_f1=0.8000, latency=10.0000"
    assert "selection: front of 3 trials; selected trial 1 by knee: eval_f1=0.8500, latency=20.0000" in lines
    infeasible = next(line for line in lines if line.startswith("trial 4"))
    assert "breaks search.constraints" in infeasible and "1 infeasible" in infeasible
    assert not any(line.startswith("selection:") and "trial 4" in line for line in lines), "an infeasible trial is never selected"
    console.sweep_finished(_study_trials())
    table = stream.getvalue().splitlines()[len(lines) :]
    assert "front of 3 trials; selected trial 1 by knee" in table[0]
    assert "eval_f1" in table[1] and "latency" in table[1] and any("complete (infeasible)" in row for row in table)


@pytest.mark.parametrize("sampler", ["tpe", "nsgaii", "gp", "random", "qmc", "grid", "cmaes"])
def test_the_samplers_the_config_accepts_are_those_optuna_runs_with_two_objectives(sampler: str) -> None:
    space = {"lora_r": ParamSpace(type="categorical", choices=[4, 8]), "learning_rate": ParamSpace(type="float", low=0.1, high=0.2)}
    search = SearchConfig(n_trials=4, sampler=sampler, objectives=list(OBJECTIVES), space=space)  # type: ignore[arg-type]
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, search, seed=0))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return trial.suggest_categorical("lora_r", [4, 8]) * trial.suggest_float("learning_rate", 0.1, 0.2), 1.0

    accepted = not [e for e in search.check("search") if e.startswith("search.sampler")]
    if accepted:
        study.optimize(objective, n_trials=4)
        assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    else:
        with pytest.raises(ValueError, match="multi-objective"):
            study.optimize(objective, n_trials=4)
    assert accepted == (sampler in MULTI_OBJECTIVE_SAMPLERS) == (sampler != "cmaes")
