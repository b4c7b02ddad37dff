"""The staged pipeline (`main`): budget split, one child run per stage, fixed hyperparameters, promotion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.search import SweepResult
from mlops.search.pipeline import split_budget, winning_stage
from tests.helpers import TINY_CONFIG, mlflow_run

GUIDE = {"data": 0.7, "hyperparameters": 0.2, "structure": 0.1}


def test_budget_split_follows_the_fractions_and_passes_on_a_skipped_share() -> None:
    assert split_budget(10, GUIDE, {"data", "hyperparameters", "structure"}) == {"data": 7, "hyperparameters": 2, "structure": 1}
    assert split_budget(10, GUIDE, {"hyperparameters", "structure"}) == {"data": 0, "hyperparameters": 7, "structure": 3}
    assert split_budget(2, GUIDE, {"hyperparameters", "structure"}) == {"data": 0, "hyperparameters": 1, "structure": 1}
    assert sum(split_budget(7, {"data": 0.5, "hyperparameters": 0.3, "structure": 0.2}, {"hyperparameters", "structure"}).values()) == 7


def test_bad_fractions_are_a_one_line_error(tracking: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mlops", "main", "--config", str(TINY_CONFIG), "--fractions", "0.5,0.5"], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "fractions:" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "mlops", "main", "--config", str(TINY_CONFIG), "--fractions", "0.5,0.6,0.1"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "pipeline.fractions: must be >= 0 and sum to 1" in out.stderr
    assert MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()]) == []


@pytest.mark.e2e
def test_mlflow_run_main_runs_every_stage_under_one_parent(tmp_path: Path) -> None:
    out = mlflow_run(tmp_path, "config=tests/configs/tiny.yaml", "n_trials=3", "study_name=staged", entry_point="main")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    main = next(r for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "main")
    assert main.info.status == "FINISHED"
    assert (main.data.params["budget_data"], main.data.params["budget_hyperparameters"], main.data.params["budget_structure"]) == (
        "1",
        "1",
        "1",
    )
    assert main.data.params["fraction_data"] == "0.7"
    stages = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == main.info.run_id}
    assert sorted(stages) == ["stage-1-data", "stage-2-hyperparameters", "stage-3-structure", "stage-4-evaluate-promote"]
    assert all(r.info.status == "FINISHED" for r in stages.values())

    def trials(stage: str) -> list:
        return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == stages[stage].info.run_id]

    data, hp, structure = trials("stage-1-data"), trials("stage-2-hyperparameters"), trials("stage-3-structure")
    assert len(data) == 1 and len(hp) == 1 and len(structure) == 1
    best_data = optuna.load_study(study_name="staged-data", storage=f"sqlite:///{tmp_path / 'optuna.db'}").best_params
    augmented = best_data["augment.multiplier"] > 0  # synonym_p is drawn (and logged) only then
    assert set(best_data) == {"augment.multiplier"} | ({"augment.synonym_p"} if augmented else set()), "the data stage searches it"
    assert data[0].data.params["augment.methods"] == "synonym,swap,delete,insert"
    for later in hp + structure:  # the data stage's winning augmentation is fixed for the later stages
        assert later.data.params["augment.multiplier"] == str(best_data["augment.multiplier"])
        assert ("augment.synonym_p" in later.data.params) == augmented
        if augmented:
            assert float(later.data.params["augment.synonym_p"]) == pytest.approx(best_data["augment.synonym_p"])
    assert main.data.tags["fixed.augment.multiplier"] == str(best_data["augment.multiplier"])
    best_lr = optuna.load_study(study_name="staged-hyperparameters", storage=f"sqlite:///{tmp_path / 'optuna.db'}").best_params[
        "learning_rate"
    ]
    assert float(structure[0].data.params["learning_rate"]) == pytest.approx(best_lr), "structure stage keeps the best hyperparameters"
    assert (
        "lora_r" in structure[0].data.params
        and "lora_r"
        not in optuna.load_study(study_name="staged-hyperparameters", storage=f"sqlite:///{tmp_path / 'optuna.db'}").best_params
    ), "lora_r is structural: searched in stage 3 only"
    promote = stages["stage-4-evaluate-promote"]
    assert promote.data.tags["winner_stage"] in ("data", "hyperparameters", "structure") and "best_test_f1" in main.data.metrics
    version = client.get_model_version_by_alias("tiny-detector", "staging")
    assert version.run_id == promote.data.tags["winner_run_id"] and version.tags["sweep_run_id"] == main.info.run_id


def test_structure_stage_fixes_training_and_decoding_winners() -> None:
    from mlops.config import load_config
    from mlops.search.pipeline import DEFAULT_DATA_SPACE, _stage_config, data_stage_space, stage_spaces

    config = load_config(str(TINY_CONFIG.parent / "tiny-summarizer.yaml"))
    assert data_stage_space(config) == DEFAULT_DATA_SPACE
    hp_space, structure_space = stage_spaces(config)
    assert set(hp_space) == {"learning_rate", "decoding", "temperature"} and set(structure_space) == {"lora_r", "lora_alpha"}
    staged = _stage_config(config, structure_space, 3, None, {"learning_rate": 1e-3, "decoding": "sample", "temperature": 0.9})
    assert (staged.training.learning_rate, staged.generation.decoding, staged.generation.temperature) == (1e-3, "sample", 0.9)
    assert staged.search.n_trials == 3 and staged.search.space == structure_space and staged.source_file == config.source_file


def _stage(number: int, values: list[float]) -> SweepResult:
    trial = optuna.trial.create_trial(values=values, params={}, distributions={})
    trial.number = number
    return SweepResult("parent", "study", number, values[0], f"run-{number}", None, None, selected=trial)


def test_the_winning_stage_is_chosen_by_the_selection_rule(tracking: str) -> None:
    one = load_config(str(TINY_CONFIG))
    two = load_config(
        str(TINY_CONFIG),
        {"search.objectives": [{"metric": "eval_f1"}, {"metric": "eval_loss", "direction": "minimize"}], "search.select": "knee"},
    )
    with mlflow.start_run() as run:
        # one objective: a later stage must do strictly better to win
        assert winning_stage({"data": _stage(0, [0.8]), "hyperparameters": _stage(1, [0.8]), "structure": _stage(2, [0.7])}, one) == "data"
        assert winning_stage({"data": _stage(0, [0.8]), "hyperparameters": _stage(1, [0.9])}, one) == "hyperparameters"
        # two objectives, the knee: the balanced stage, not the one best on either objective alone
        stages = {"data": _stage(0, [0.9, 0.9]), "hyperparameters": _stage(1, [0.85, 0.3]), "structure": _stage(2, [0.5, 0.1])}
        assert winning_stage(stages, two) == "hyperparameters"
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["mlops.selection_rule"] == "knee" and tags["mlops.selected_trial"] == "1"
    assert tags["mlops.selection_reason"].startswith("stage hyperparameters: trial 1 is the point of the Pareto front (3 trials)")
