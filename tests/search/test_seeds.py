"""Multi-seed trials and top-k confirmation through `mlflow run`: each seed a nested run, the trial its mean, the
confirmations child runs of the parent, and the version registered the best by confirmed mean."""

from __future__ import annotations

import statistics
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from mlops.config import load_config
from mlops.search import SweepOptions, run_sweep
from mlops.search.study import WINNER_ATTR
from tests.helpers import TINY_CONFIG, isolated_store, mlflow_run

pytestmark = pytest.mark.e2e


def _check_seed_runs(client: MlflowClient, trial: Run, seeds: list[Run]) -> None:
    """A trial of two seeds: each seed a FINISHED nested run with its adapter, trained differently; the trial holds
    their mean, spread and running mean (one point per seed-epoch)."""
    assert sorted(s.data.params["seed"] for s in seeds) == ["7", "8"]
    assert all(s.data.tags["mlops.seed_of_run"] == trial.info.run_id and s.info.status == "FINISHED" for s in seeds)
    values = [s.data.metrics["eval_f1"] for s in seeds]
    assert trial.data.metrics["eval_f1"] == pytest.approx(statistics.fmean(values))
    assert trial.data.metrics["eval_f1_sd"] == pytest.approx(statistics.stdev(values))
    losses = [[m.value for m in client.get_metric_history(s.info.run_id, "train_loss")] for s in seeds]
    assert losses[0] != losses[1], "two seeds of one configuration must train differently"
    running = client.get_metric_history(trial.info.run_id, "eval_f1_running_mean")
    assert [m.step for m in sorted(running, key=lambda m: m.step)] == [1, 2]  # one epoch per seed: steps are seed-epochs
    assert all("adapter" in {a.path for a in client.list_artifacts(s.info.run_id)} for s in seeds)


def test_seeds_per_trial_and_confirmation_end_to_end(tmp_path: Path) -> None:
    params = ["config=tests/configs/tiny.yaml", "n_trials=3", "sampler=random", "seed=7", "seeds_per_trial=2", "confirm_top_k=2"]
    out = mlflow_run(tmp_path, *params)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["seeds_per_trial"] == "2" and parent.data.params["confirm_top_k"] == "2"

    def children(run_id: str) -> list:  # type: ignore[type-arg]
        return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id]

    trials = [r for r in children(parent.info.run_id) if r.info.run_name.startswith("trial-")]
    confirmations = [r for r in children(parent.info.run_id) if "mlops.confirmation_of" in r.data.tags]
    assert len(trials) == 3 and len(confirmations) == 2
    for trial in trials:
        _check_seed_runs(client, trial, children(trial.info.run_id))

    by_number = {t.data.params["trial_number"]: t for t in trials}
    ranked = sorted(trials, key=lambda t: (-t.data.metrics["eval_f1"], int(t.data.params["trial_number"])))  # ties: earlier first
    assert {c.data.tags["mlops.confirmation_of"] for c in confirmations} == {t.data.params["trial_number"] for t in ranked[:2]}
    confirmed = {}
    for confirmation in confirmations:
        seeds = children(confirmation.info.run_id)
        assert sorted(s.data.params["seed"] for s in seeds) == ["10", "11", "9"], "fresh seeds, none the search used"
        number = confirmation.data.tags["mlops.confirmation_of"]
        assert confirmation.data.tags["mlops.confirmation_of_run"] == by_number[number].info.run_id
        confirmed[number] = confirmation.data.metrics["eval_f1"]
        assert confirmed[number] == pytest.approx(statistics.fmean(s.data.metrics["eval_f1"] for s in seeds))

    metrics = parent.data.metrics
    winner = str(int(metrics["confirmed_best_trial_number"]))
    assert confirmed[winner] == max(confirmed.values()) == pytest.approx(metrics["confirmed_best_eval_f1"])
    search_winner = str(int(metrics["search_best_trial_number"]))
    assert metrics["confirmation_changed_winner"] == float(winner != search_winner)
    assert parent.data.tags["mlops.confirmed_winner"] == winner and parent.data.tags["mlops.search_winner"] == search_winner
    version = client.get_model_version_by_alias("tiny-detector", "staging")
    first_seed = next(s for s in children(by_number[winner].info.run_id) if s.data.params["seed"] == "7")
    assert version.tags["optuna_trial"] == winner and version.run_id == first_seed.info.run_id, "the first seed's adapter"

    # a second worker that joins the finished study writes no summary: it reports the winner the first one chose, which
    # the study records. Here confirmation kept the search's winner, so the record is moved to another trial, as if
    # confirmation had chosen that one: the joining worker must report it, not the search's best.
    study = optuna.load_study(study_name=parent.data.tags["optuna.study_name"], storage=parent.data.tags["optuna.storage"])
    assert study.user_attrs[WINNER_ATTR] == int(winner)
    other = next(n for n in by_number if n != search_winner) if winner == search_winner else winner
    study.set_user_attr(WINNER_ATTR, int(other))
    overrides = {"search.n_trials": 3, "search.seeds_per_trial": 2, "search.confirm_top_k": 2, "training.seed": 7}
    with isolated_store(tmp_path):
        options = SweepOptions(storage=parent.data.tags["optuna.storage"], study_name=study.study_name)
        joined = run_sweep(load_config(str(TINY_CONFIG), overrides), options)
    assert not joined.finalized and joined.trials_run == 0
    assert joined.best_trial == int(other) != int(search_winner)
