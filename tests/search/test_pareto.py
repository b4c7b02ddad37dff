"""Multi-objective sweeps of the tiny model, read back through MlflowClient: the Pareto front on the parent run and
its children, the selection, constraints, several seeds with duplicates and confirmation, and the refusals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.cli import main
from mlops.config import load_config
from mlops.search import SweepOptions, run_sweep
from tests.helpers import TINY_CONFIG, mlflow_run, write

# Deterministic metrics of a tiny trial: the validation loss, and the adapter's size (lora_r 4 or 8).
TWO_OBJECTIVES = [{"metric": "eval_loss", "direction": "minimize"}, {"metric": "trainable_params", "direction": "minimize"}]
GRID = {
    "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "values": [1.0e-4, 1.0e-3]},
    "lora_r": {"type": "categorical", "choices": [4, 8]},
}


def _config(tmp_path: Path, **search: Any) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["search"] = {**data["search"], **search}
    data["registry"]["policy"] = str(TINY_CONFIG.parent.parent / "registry" / "tiny-detector.yaml")
    return write(tmp_path / "tiny-pareto.yaml", yaml.safe_dump(data))


def _children(client: MlflowClient, parent: str) -> dict[int, Any]:
    experiment = client.get_run(parent).info.experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    return {int(r.data.params["trial_number"]): r for r in runs if "trial_number" in r.data.params}


def _front(points: dict[int, tuple[float, float]]) -> set[int]:
    """The trials no other trial dominates, both objectives minimised: computed here from the runs' metrics."""

    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] <= b[0] and a[1] <= b[1] and a != b

    return {n for n, p in points.items() if not any(dominates(q, p) for m, q in points.items() if m != n)}


@pytest.mark.slow
def test_two_objective_sweep_puts_the_front_and_the_selection_on_the_parent(tracking: str, tmp_path: Path) -> None:
    path = _config(tmp_path, n_trials=4, sampler="grid", space=GRID, objectives=TWO_OBJECTIVES, select="knee")
    result = run_sweep(load_config(str(path)), SweepOptions())
    client = MlflowClient()
    children = _children(client, result.parent_run_id)
    assert sorted(children) == [0, 1, 2, 3]
    points = {n: (r.data.metrics["eval_loss"], r.data.metrics["trainable_params"]) for n, r in children.items()}
    assert len({p[1] for p in points.values()}) == 2, "lora_r 4 and 8 give two adapter sizes"
    front = _front(points)
    assert 1 <= len(front) < 4
    assert {n for n, r in children.items() if r.data.tags.get("mlops.pareto_front") == "true"} == front
    assert {n for n, r in children.items() if r.data.tags.get("mlops.pareto_front") == "false"} == set(children) - front

    parent = client.get_run(result.parent_run_id)
    assert parent.data.metrics["pareto_front_size"] == len(front)
    document = mlflow.artifacts.load_dict(f"runs:/{result.parent_run_id}/pareto_front.json")
    assert {row["trial"] for row in document["trials"]} == front
    for row in document["trials"]:
        assert row["objectives"] == {"eval_loss": points[row["trial"]][0], "trainable_params": points[row["trial"]][1]}
        assert row["params"]["lora_r"] == int(children[row["trial"]].data.params["lora_r"])
    assert document["selected_trial"] == result.best_trial and document["selection_rule"] == "knee"
    assert {a.path for a in client.list_artifacts(result.parent_run_id, "plots")} >= {"plots/pareto_front.png"}
    assert result.best_trial in front
    assert parent.data.tags["mlops.selection_rule"] == "knee"
    assert parent.data.tags["mlops.selected_trial"] == str(result.best_trial)
    assert "nearest the ideal point" in parent.data.tags["mlops.selection_reason"]
    report = mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/sweep_report.md")
    assert f"## Pareto front ({len(front)} trials)" in report and f"Selection: knee: trial {result.best_trial}" in report
    assert "Compute: 4 trial-epochs" in report, "one epoch each, counted without Optuna's intermediate values"
    assert parent.data.metrics["best_eval_loss"] == points[result.best_trial][0]
    assert parent.data.metrics["best_trainable_params"] == points[result.best_trial][1]

    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    assert {t.number: tuple(t.values) for t in study.trials} == points, "Optuna was told what the runs logged"
    assert {t.number for t in study.best_trials} == front
    version = client.get_model_version_by_alias("tiny-detector", "staging")  # the selected trial is the one registered
    assert version.run_id == children[result.best_trial].info.run_id and version.tags["optuna_trial"] == str(result.best_trial)


@pytest.mark.slow
def test_a_trial_that_breaks_a_constraint_is_recorded_and_never_selected(tracking: str, tmp_path: Path) -> None:
    # One objective that prefers the larger adapter, and a bound that only the smaller one keeps.
    path = _config(
        tmp_path,
        n_trials=2,
        sampler="grid",
        space={"lora_r": {"type": "categorical", "choices": [4, 8]}},
        objectives=[{"metric": "trainable_params", "direction": "maximize"}],
        constraints=[{"metric": "trainable_params", "max": 5000}],
    )
    result = run_sweep(load_config(str(path)), SweepOptions(promote=False))
    client = MlflowClient()
    children = _children(client, result.parent_run_id)
    by_r = {int(r.data.params["lora_r"]): n for n, r in children.items()}
    small, large = by_r[4], by_r[8]
    assert children[small].data.metrics["trainable_params"] <= 5000 < children[large].data.metrics["trainable_params"]
    assert "breaks search.constraints: trainable_params" in children[large].data.tags["mlops.infeasible"]
    assert "mlops.infeasible" not in children[small].data.tags
    assert result.best_trial == small, "the larger adapter scores higher but breaks the bound"
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["mlops.selected_trial"] == str(small)
    report = mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/sweep_report.md")
    assert f"Infeasible (search.constraints): trial {large}; never selected." in report
    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    assert study.trials[large].user_attrs["mlops_constraints"][0] > 0 >= study.trials[small].user_attrs["mlops_constraints"][0]
    # one objective: no front is drawn or tagged
    assert "pareto_front_size" not in parent.data.metrics
    assert not any("mlops.pareto_front" in r.data.tags for r in children.values())
    assert "pareto_front.json" not in {a.path for a in client.list_artifacts(result.parent_run_id)}


@pytest.mark.slow
def test_seeds_duplicates_and_confirmation_with_two_objectives(tracking: str, tmp_path: Path) -> None:
    # Three random draws from two configurations: at least one trial is a duplicate.
    path = _config(
        tmp_path,
        n_trials=3,
        sampler="random",
        space={"lora_r": {"type": "categorical", "choices": [4, 8]}},
        objectives=TWO_OBJECTIVES,
        select={"within": {"metric": "eval_loss", "of_best": 1.0, "then": "trainable_params"}},
        seeds_per_trial=2,
        confirm_top_k=1,
        confirm_seeds=2,
    )
    result = run_sweep(load_config(str(path)), SweepOptions(promote=False))
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    duplicates = [t for t in study.trials if "mlops_duplicate_of" in t.user_attrs]
    assert duplicates and all(t.values == study.trials[t.user_attrs["mlops_duplicate_of"]].values for t in duplicates)
    children = _children(client, result.parent_run_id)
    for t in study.trials:
        run = children[t.number]
        assert t.values[0] == run.data.metrics["eval_loss"]
        if "mlops_duplicate_of" not in t.user_attrs:  # each seed a nested run; the trial's run holds their mean
            seeds = client.search_runs([run.info.experiment_id], filter_string=f"tags.`mlops.seed_of_run` = '{run.info.run_id}'")
            assert len(seeds) == 2 and seeds[0].data.metrics["eval_loss"] != seeds[1].data.metrics["eval_loss"]
            assert t.values[0] == pytest.approx(sum(s.data.metrics["eval_loss"] for s in seeds) / 2)
            assert t.values[1] == sum(s.data.metrics["trainable_params"] for s in seeds) / 2, "only the seeds' runs log it"
    # within a loss of 1.0 every trial qualifies: the smaller adapter wins, confirmed over fresh seeds
    assert int(children[result.best_trial].data.params["lora_r"]) == 4
    assert parent.data.metrics["confirmed_best_trial_number"] == result.best_trial
    confirmation = mlflow.artifacts.load_dict(f"runs:/{result.parent_run_id}/confirmation.json")
    assert confirmation["columns"] == [
        "trial",
        "search_eval_loss",
        "search_trainable_params",
        "confirmed_eval_loss",
        "confirmed_trainable_params",
        "confirmation_run_id",
    ]
    assert [row[0] for row in confirmation["data"]] == [result.best_trial]
    assert "by the means over 2 fresh seeds" in parent.data.tags["mlops.selection_reason"]
    assert parent.data.tags["mlops.selection_rule"] == "within"


@pytest.mark.parametrize(
    ("search", "extra", "pattern"),
    [
        ({"objectives": TWO_OBJECTIVES, "sampler": "cmaes"}, [], r"search.sampler: cmaes cannot optimise 2 objectives"),
        ({"objectives": TWO_OBJECTIVES}, ["--sampler", "cmaes"], r"search.sampler: cmaes cannot optimise 2 objectives"),
        ({"objectives": TWO_OBJECTIVES, "pruner": "hyperband"}, [], r"search.pruner: Optuna cannot prune a study with 2 objectives"),
        ({"objectives": TWO_OBJECTIVES}, ["--pruner", "median"], r"search.pruner: Optuna cannot prune a study with 2 objectives"),
    ],
)
def test_refused_combinations_are_one_line_exit_2(
    search: dict[str, Any], extra: list[str], pattern: str, tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, **search)
    assert main(["sweep", "--config", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(pattern, err), err
    assert not MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])


@pytest.mark.e2e
def test_mlflow_run_sweep_of_two_objectives(tmp_path: Path) -> None:
    path = _config(tmp_path, n_trials=2, sampler="nsgaii", objectives=TWO_OBJECTIVES, select="knee")
    out = mlflow_run(tmp_path, f"config={path}", "promote=false")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and parent.data.tags["mlops.selection_rule"] == "knee"
    assert parent.data.params["objectives"] == "eval_loss (minimize), trainable_params (minimize)"
    front = [r for r in trials if r.data.tags.get("mlops.pareto_front") == "true"]
    assert len(trials) == 2 and parent.data.metrics["pareto_front_size"] == len(front) >= 1
    assert parent.data.tags["mlops.selected_trial"] in {r.data.params["trial_number"] for r in front}


@pytest.mark.slow
def test_an_objective_no_run_logs_fails_the_trial_and_its_run(tracking: str, tmp_path: Path) -> None:
    objectives = [{"metric": "eval_loss"}, {"metric": "no_such_metric", "direction": "minimize"}]
    path = _config(tmp_path, n_trials=1, sampler="random", space={"lora_r": GRID["lora_r"]}, objectives=objectives)
    with pytest.raises(Exception, match=r"no trial of study .* completed; see the child runs' 'error' tags"):
        run_sweep(load_config(str(path)), SweepOptions())
    client = MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], filter_string="params.trial_number = '0'")
    assert [r.info.status for r in runs] == ["FAILED"], "the run does not say FINISHED for a trial Optuna failed"
    assert "logged no 'no_such_metric'" in runs[0].data.tags["error"]
