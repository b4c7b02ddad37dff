"""The sweep from the plain CLI path: run tree, child runs, failures, summary, registration and gate."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.search import SweepOptions, run_sweep

from .conftest import TINY_CONFIG


def _runs(client: MlflowClient, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id])


def test_sweep_builds_run_tree_and_promotes(tracking: str) -> None:
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 3})
    result = run_sweep(config, SweepOptions())
    client = MlflowClient()
    runs = _runs(client, "tiny")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert [p.info.run_id for p in parents] == [result.parent_run_id]
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    assert sorted(c.data.params["trial_number"] for c in children) == ["0", "1", "2"]
    for child in children:
        assert {"learning_rate", "lora_r", "seed", "batch_size", "epochs"} <= set(child.data.params)
        assert "eval_f1" in child.data.metrics and "test_f1" in child.data.metrics
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) > 1
        assert {"environment.json", "adapter"} <= {a.path for a in client.list_artifacts(child.info.run_id)}

    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_trial_number"] == result.best_trial
    assert parent.data.tags["optuna.study_name"] == result.study_name
    assert parent.data.tags["optuna.storage"].endswith("optuna.db")
    assert 0.5 < parent.data.metrics["baseline_test_f1"] < 1.0
    assert parent.data.metrics["best_eval_f1"] == pytest.approx(result.best_value)
    assert {"sweep_summary.json", "sweep_report.md", "plots", "environment.json", "config"} <= {
        a.path for a in client.list_artifacts(result.parent_run_id)
    }
    plots = {a.path for a in client.list_artifacts(result.parent_run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/param_importances.png", "plots/parallel_coordinate.png"} <= plots
    assert (parent.data.metrics["n_complete"], parent.data.metrics["n_pruned"], parent.data.metrics["n_failed"]) == (3, 0, 0)
    report = mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/sweep_report.md")
    assert f"Best: trial {result.best_trial}" in report and "3 complete, 0 pruned, 0 failed" in report

    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    assert len(study.trials) == 3 and study.user_attrs["mlflow_parent_run_id"] == result.parent_run_id

    version = client.get_model_version_by_alias("tiny-detector", "staging")
    assert version.version == result.registered_version
    assert version.run_id == result.best_run_id
    assert version.tags["gate.staging"] == "passed" and version.tags["sweep_run_id"] == result.parent_run_id
    model = mlflow.pyfunc.load_model("models:/tiny-detector@staging")
    out = model.predict(__import__("pandas").DataFrame({"text": ["send me your PIN now", "your rent transfer is done"]}))
    assert list(out["label"].unique()) and set(out["label"]) <= {"fraud", "legitimate"}
    assert ((out["probability"] >= 0.5) & (out["probability"] <= 1.0)).all()


def test_failed_trial_is_recorded_and_sweep_goes_on(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlops.train.finetune

    real = mlops.train.finetune.fit
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated out-of-memory")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mlops.train.finetune, "fit", flaky)
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 3})
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    children = [r for r in _runs(client, "tiny") if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    failed = [c for c in children if c.info.status == "FAILED"]
    assert len(children) == 3 and len(failed) == 1
    assert failed[0].data.tags["error"] == "RuntimeError: simulated out-of-memory"
    study = optuna.load_study(study_name=result.study_name, storage=client.get_run(result.parent_run_id).data.params["storage"])
    assert [t.state.name for t in study.trials].count("FAIL") == 1
    assert client.get_run(result.parent_run_id).data.metrics["n_failed"] == 1
    assert result.registered_version is None


@pytest.mark.parametrize("sampler", ["grid", "tpe", "cmaes", "qmc", "random"])
def test_samplers_are_seeded(sampler: str) -> None:
    """Each sampler, seeded as the sweep seeds it, proposes the same points in the same order
    (6 trials: TPE and CMA-ES leave their start-up phase)."""
    from mlops.search.space import make_sampler, suggest

    config = load_config(str(TINY_CONFIG), {"search.n_trials": 6, "search.sampler": sampler})
    proposals = []
    for _ in range(2):
        study = optuna.create_study(sampler=make_sampler(sampler, config.search, seed=7), direction="maximize")
        points = []
        for _ in range(6 if sampler != "grid" else 2):
            trial = study.ask()
            values = suggest(trial, config.search.space)
            study.tell(trial, -abs(math.log10(values["learning_rate"]) + 3.5))  # a deterministic objective
            points.append(values)
        proposals.append(points)
    assert proposals[0] == proposals[1]
    assert len({tuple(sorted(p.items())) for p in proposals[0]}) > 1, "a seeded sampler must still explore"
    if sampler == "grid":
        assert all(p["learning_rate"] in (1e-4, 1e-3) for p in proposals[0])


def test_a_seeded_sweep_repeats_its_trials(tracking: str) -> None:
    params = []
    for _ in range(2):
        config = load_config(str(TINY_CONFIG), {"search.n_trials": 2, "search.sampler": "tpe", "training.max_steps": 1})
        result = run_sweep(config, SweepOptions(promote=False))
        study = optuna.load_study(study_name=result.study_name, storage=MlflowClient().get_run(result.parent_run_id).data.params["storage"])
        params.append([t.params for t in study.trials])
    assert params[0] == params[1]


def test_pruned_trial_ends_killed_with_its_curves(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = optuna.trial.Trial.should_prune
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 1 or real(self))
    data = yaml.safe_load(TINY_CONFIG.read_text())
    del data["training"]["max_steps"]  # whole epochs: one evaluation (and pruning point) per epoch
    data["training"]["epochs"] = 2
    data["dataset"]["max_samples"] = 400  # short epochs
    data["registry"]["policy"] = str(TINY_CONFIG.parents[1] / "registry" / "tiny-detector.yaml")
    path = tmp_path / "epochs.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(str(path), {"search.n_trials": 3, "search.pruner": "median"})
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    children = {
        r.data.params["trial_number"]: r for r in _runs(client, "tiny") if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id
    }
    pruned = children["1"]
    assert pruned.info.status == "KILLED"
    assert pruned.data.tags["pruned"] == "true" and pruned.data.tags["pruned_at_epoch"] == "1"
    assert "error" not in pruned.data.tags
    assert len(client.get_metric_history(pruned.info.run_id, "eval_f1")) == 1, "curves up to the pruning point are kept"
    assert len(client.get_metric_history(pruned.info.run_id, "train_loss")) > 1
    assert children["0"].info.status == "FINISHED" and len(client.get_metric_history(children["0"].info.run_id, "eval_f1")) == 2
    study = optuna.load_study(study_name=result.study_name, storage=client.get_run(result.parent_run_id).data.params["storage"])
    assert [t.state.name for t in study.trials][1] == "PRUNED"
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_pruned"] == 1 and parent.data.metrics["n_complete"] == 2


def test_pruners_and_the_random_search_warning(caplog: pytest.LogCaptureFixture) -> None:
    from mlops.config import ParamSpace, SearchConfig
    from mlops.search.space import make_pruner, make_sampler

    assert isinstance(make_pruner("median", 3), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 3), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", 3), optuna.pruners.NopPruner)
    space = {name: ParamSpace(type="float", low=0.0, high=0.5) for name in ("lora_dropout", "warmup_ratio", "weight_decay")}
    space |= {name: ParamSpace(type="categorical", choices=[8, 16]) for name in ("batch_size", "lora_r", "lora_alpha")}
    with caplog.at_level("WARNING", logger="mlops.search.space"):
        make_sampler("random", SearchConfig(n_trials=10, sampler="random", space=space), seed=0)
    assert "random search over 6 dimensions with 10 trials: use 50 or more" in caplog.text


def test_nan_loss_fails_only_that_trial(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import mlops.train.finetune

    real_finetune, real_loss = mlops.train.finetune.fit, torch.nn.functional.cross_entropy
    calls = {"n": 0}

    def nan_loss(*args: object, **kwargs: object) -> torch.Tensor:
        return real_loss(*args, **kwargs) * float("nan")  # type: ignore[arg-type]

    def second_trial_diverges(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        with monkeypatch.context() as patch:
            if calls["n"] == 2:
                patch.setattr(torch.nn.functional, "cross_entropy", nan_loss)
            return real_finetune(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mlops.train.finetune, "fit", second_trial_diverges)
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 3})
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    children = {
        r.data.params["trial_number"]: r for r in _runs(client, "tiny") if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id
    }
    assert children["1"].info.status == "FAILED"
    assert children["1"].data.tags["error"].startswith("TrainingDiverged: train loss became nan at step")
    assert children["0"].info.status == children["2"].info.status == "FINISHED"
    assert client.get_run(result.parent_run_id).data.metrics["n_failed"] == 1


def test_grid_search_runs_each_point_once_and_finishes(tracking: str) -> None:
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 9, "search.sampler": "grid", "training.max_steps": 1})
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_complete"] == 4, "2 learning rates x 2 ranks"
    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    assert sorted((t.params["learning_rate"], t.params["lora_r"]) for t in study.trials) == [(1e-4, 4), (1e-4, 8), (1e-3, 4), (1e-3, 8)]
