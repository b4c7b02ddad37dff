"""The sweep from the plain CLI path: run tree, child runs, failures, summary, registration and gate."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import Run

from mlops.config import ParamSpace, load_config
from mlops.search import SweepOptions, run_sweep
from tests.helpers import TINY_CONFIG

TINY_SUMMARIZER = TINY_CONFIG.parent / "tiny-summarizer.yaml"


def _runs(client: MlflowClient, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id])


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.parametrize("sampler", ["grid", "tpe", "cmaes", "qmc", "random", "gp"])
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
            values = suggest(trial, config.search.space, config.tunable_values())
            study.tell(trial, -abs(math.log10(values["learning_rate"]) + 3.5))  # a deterministic objective
            points.append(values)
        proposals.append(points)
    assert proposals[0] == proposals[1]
    assert len({tuple(sorted(p.items())) for p in proposals[0]}) > 1, "a seeded sampler must still explore"
    if sampler == "grid":
        assert all(p["learning_rate"] in (1e-4, 1e-3) for p in proposals[0])


@pytest.mark.slow
def test_a_seeded_sweep_repeats_its_trials(tracking: str) -> None:
    params = []
    for _ in range(2):
        config = load_config(str(TINY_CONFIG), {"search.n_trials": 2, "search.sampler": "tpe", "training.max_steps": 1})
        result = run_sweep(config, SweepOptions(promote=False))
        study = optuna.load_study(study_name=result.study_name, storage=MlflowClient().get_run(result.parent_run_id).data.params["storage"])
        params.append([t.params for t in study.trials])
    assert params[0] == params[1]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_grid_search_runs_each_point_once_and_finishes(tracking: str) -> None:
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 9, "search.sampler": "grid", "training.max_steps": 1})
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_complete"] == 4, "2 learning rates x 2 ranks"
    assert parent.data.metrics["n_duplicate"] == 0, "distinct grid points are distinct configurations"
    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    assert sorted((t.params["learning_rate"], t.params["lora_r"]) for t in study.trials) == [(1e-4, 4), (1e-4, 8), (1e-3, 4), (1e-3, 8)]


DATA_GRID = {  # 4 grid points; the two with multiplier 0 differ only in a setting that does not apply
    "augment.multiplier": {"type": "int", "low": 0, "high": 1},
    "augment.synonym_p": {"type": "float", "low": 0.1, "high": 0.3},
}


def _children(client: MlflowClient, parent_run_id: str) -> dict[str, Run]:
    return {r.data.params["trial_number"]: r for r in _runs(client, "tiny") if r.data.tags.get("mlflow.parentRunId") == parent_run_id}


@pytest.mark.parametrize("sampler", ["random", "tpe", "qmc"])
def test_a_sampled_multiplier_of_zero_never_carries_a_synonym_p(sampler: str) -> None:
    from dataclasses import replace

    from mlops.search.pipeline import DEFAULT_DATA_SPACE
    from mlops.search.space import make_sampler, suggest

    config = load_config(str(TINY_CONFIG), {"search.n_trials": 30, "search.sampler": sampler})
    search = replace(config.search, space=DEFAULT_DATA_SPACE)
    study = optuna.create_study(sampler=make_sampler(sampler, search, seed=3), direction="maximize")
    for _ in range(30):
        trial = study.ask()
        values = suggest(trial, search.space, config.tunable_values())
        study.tell(trial, values["augment.multiplier"] + values.get("augment.synonym_p", 0.0))
    without = [t.params for t in study.trials if t.params["augment.multiplier"] == 0]
    augmented = [t.params for t in study.trials if t.params["augment.multiplier"] > 0]
    assert without and augmented
    assert all(set(p) == {"augment.multiplier"} for p in without)
    assert all(set(p) == {"augment.multiplier", "augment.synonym_p"} for p in augmented)


def test_a_fixed_controlling_setting_decides_whether_a_setting_is_drawn() -> None:
    from mlops.search.space import never_drawn, suggest

    space = {"temperature": ParamSpace(type="float", low=0.7, high=1.2), "lora_r": ParamSpace(type="categorical", choices=[4, 8])}
    greedy = load_config(str(TINY_SUMMARIZER), {"generation.decoding": "greedy"})
    sample = load_config(str(TINY_SUMMARIZER), {"generation.decoding": "sample"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert set(suggest(study.ask(), space, greedy.tunable_values())) == {"lora_r"}
    assert set(suggest(study.ask(), space, sample.tunable_values())) == {"temperature", "lora_r"}
    assert never_drawn(space, greedy.tunable_values()) == [
        "search.space.temperature is never drawn: it applies only when decoding = sample, and decoding is 'greedy' (not searched)"
    ]
    assert never_drawn(space, sample.tunable_values()) == []


def test_the_configuration_key_covers_what_decides_a_result() -> None:
    from dataclasses import replace

    from mlops.data import load_task_data
    from mlops.search.duplicates import configuration_key

    config = load_config(str(TINY_CONFIG), {"augment.methods": ["swap"]})
    data = load_task_data(config.task, config.dataset, TINY_CONFIG.parent, config.training.seed)

    def key(params: dict[str, object], on: object = data) -> str:
        trial = config.with_params(params)
        return configuration_key(trial, trial.search.space, on)  # type: ignore[arg-type]

    assert key({"augment.multiplier": 0, "augment.synonym_p": 0.1}) == key({"augment.multiplier": 0, "augment.synonym_p": 0.3})
    assert key({"augment.multiplier": 1, "augment.synonym_p": 0.1}) != key({"augment.multiplier": 1, "augment.synonym_p": 0.3})
    assert key({"num_cycles": 3}) == key({"num_cycles": 5}), "num_cycles does nothing with the linear schedule"
    assert key({"lr_scheduler": "cosine_with_restarts", "num_cycles": 3}) != key({"lr_scheduler": "cosine_with_restarts", "num_cycles": 5})
    assert key({"learning_rate": 1e-4}) == key({"learning_rate": 1e-4})
    assert key({"learning_rate": 1e-4}) != key({"learning_rate": 1e-4, "seed": 43}), "a new seed is a new configuration"
    assert key({}) != key({}, replace(data, test=data.validation)), "other data is another configuration"


@pytest.mark.slow
def test_grid_points_that_differ_only_in_what_does_not_apply_train_once(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlops.train.finetune

    real, trained = mlops.train.finetune.fit, []

    def counted(*args: object, **kwargs: object) -> object:
        trained.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mlops.train.finetune, "fit", counted)
    overrides = {"search.sampler": "grid", "search.n_trials": 4, "search.space": DATA_GRID, "training.max_steps": 2}
    config = load_config(str(TINY_CONFIG), overrides | {"augment.methods": ["swap", "delete"]})
    result = run_sweep(config, SweepOptions(promote=False))
    assert len(trained) == 3, "4 grid points, 3 configurations"

    client = MlflowClient()
    children = _children(client, result.parent_run_id)
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children.values())
    for child in children.values():
        params = child.data.params
        assert ("augment.synonym_p" in params) == (params["augment.multiplier"] == "1"), params
    (duplicate,) = [c for c in children.values() if "mlops.duplicate_of" in c.data.tags]
    original = children[duplicate.data.tags["mlops.duplicate_of"]]
    assert original.data.params["augment.multiplier"] == duplicate.data.params["augment.multiplier"] == "0"
    assert duplicate.data.tags["mlops.duplicate_of_run_id"] == original.info.run_id
    assert duplicate.data.metrics["eval_f1"] == original.data.metrics["eval_f1"]

    parent = client.get_run(result.parent_run_id)
    assert (parent.data.metrics["n_complete"], parent.data.metrics["n_duplicate"]) == (4, 1)
    assert parent.data.metrics["duplicate_seconds_saved"] > 0 and parent.data.metrics["duplicate_epochs_saved"] == 1
    report = mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/sweep_report.md")
    pair = f"trial {duplicate.data.params['trial_number']} = trial {original.data.params['trial_number']}"
    assert f"Duplicates: 1 ({pair})" in report
    study = optuna.load_study(study_name=result.study_name, storage=parent.data.params["storage"])
    assert [set(t.params) for t in study.trials if t.params["augment.multiplier"] == 0] == [{"augment.multiplier"}] * 2


@pytest.mark.slow
def test_a_forced_repeat_of_a_completed_configuration_trains_nothing(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    import mlops.train.finetune

    config = load_config(str(TINY_CONFIG), {"search.n_trials": 1, "training.max_steps": 2})
    first = run_sweep(config, SweepOptions(promote=False, study_name="again"))
    client = MlflowClient()
    storage = client.get_run(first.parent_run_id).data.params["storage"]
    study = optuna.load_study(study_name="again", storage=storage)
    study.enqueue_trial(study.trials[0].params)  # the same point again, as a sampler redrawing it would

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a duplicate trial must not train")

    monkeypatch.setattr(mlops.train.finetune, "fit", no_training)
    monkeypatch.setattr(transformers.Trainer, "__init__", no_training)
    again = run_sweep(
        load_config(str(TINY_CONFIG), {"search.n_trials": 2, "training.max_steps": 2}), SweepOptions(promote=False, study_name="again")
    )

    original, repeat = optuna.load_study(study_name="again", storage=storage).trials
    assert repeat.state.name == "COMPLETE" and repeat.value == original.value
    assert repeat.user_attrs["mlops_duplicate_of"] == 0 and repeat.user_attrs["mlops_config_key"] == original.user_attrs["mlops_config_key"]
    assert (repeat.datetime_complete - repeat.datetime_start).total_seconds() < 2.0

    assert again.parent_run_id == first.parent_run_id
    children = _children(client, first.parent_run_id)
    source, copy = children["0"], children["1"]
    assert copy.info.status == "FINISHED" and copy.info.run_name == "trial-1"
    assert copy.data.tags["mlops.duplicate_of"] == "0" and copy.data.tags["optuna.trial_number"] == "1"
    assert "mlops.duplicate_of" not in source.data.tags
    assert {k: v for k, v in copy.data.params.items() if k != "trial_number"} == {
        k: v for k, v in source.data.params.items() if k != "trial_number"
    }
    for name in ("eval_f1", "test_f1", "eval_loss"):
        assert copy.data.metrics[name] == source.data.metrics[name]
    assert copy.data.metrics["train_seconds"] == 0 < source.data.metrics["train_seconds"]
    assert "adapter" not in {a.path for a in client.list_artifacts(copy.info.run_id)}

    parent = client.get_run(first.parent_run_id)
    assert (parent.data.metrics["n_complete"], parent.data.metrics["n_duplicate"]) == (2, 1)
    assert parent.data.metrics["duplicate_seconds_saved"] == pytest.approx(
        (original.datetime_complete - original.datetime_start).total_seconds()
    )
    assert parent.data.metrics["best_trial_number"] == 0, "the best configuration is the trial that trained it"
    assert again.best_trial == 0 and again.best_run_id == source.info.run_id


@pytest.mark.slow
def test_greedy_trials_never_carry_a_temperature(tracking: str) -> None:
    space = {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "values": [1e-3]},
        "decoding": {"type": "categorical", "choices": ["greedy", "sample"]},
        "temperature": {"type": "float", "low": 0.7, "high": 1.2, "values": [0.8, 1.1]},
    }
    config = load_config(str(TINY_SUMMARIZER), {"search.sampler": "grid", "search.n_trials": 4, "search.space": space})
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    children = [r for r in _runs(client, "tiny-summarizer") if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    greedy = [c for c in children if c.data.params["decoding"] == "greedy"]
    sample = [c for c in children if c.data.params["decoding"] == "sample"]
    assert len(greedy) == len(sample) == 2
    assert not any({"temperature", "top_p", "num_beams"} & set(c.data.params) for c in greedy)
    assert sorted(c.data.params["temperature"] for c in sample) == ["0.8", "1.1"]
    assert [c.data.tags.get("mlops.duplicate_of") is None for c in greedy].count(False) == 1, "the two greedy points are one configuration"
    study = optuna.load_study(study_name=result.study_name, storage=client.get_run(result.parent_run_id).data.params["storage"])
    assert all("temperature" not in t.params for t in study.trials if t.params["decoding"] == "greedy")


def _trial_cards(client: MlflowClient, children: list) -> dict[str, dict]:
    import json

    cards = {}
    for child in children:
        local = client.download_artifacts(child.info.run_id, "adapter/mlops_model.json")
        cards[child.info.run_id] = json.loads(Path(local).read_text(encoding="utf-8"))
    return cards


@pytest.mark.slow
def test_cost_knobs_are_searched_logged_and_written_for_serving(tracking: str) -> None:
    space = {
        "drop_layers": {"type": "categorical", "choices": [0, 1]},
        "max_length": {"type": "categorical", "choices": [16, 32]},
        "serving.merge_adapter": {"type": "categorical", "choices": [True, False]},
        "serving.precision": {"type": "categorical", "choices": ["fp32", "dynamic_int8"]},
    }
    overrides = {"search.n_trials": 3, "search.sampler": "grid", "search.space": space, "training.max_steps": 2}  # 3 distinct points
    config = load_config(str(TINY_CONFIG), overrides)
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    children = [r for r in _runs(client, "tiny") if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    study = optuna.load_study(study_name=result.study_name, storage=client.get_run(result.parent_run_id).data.params["storage"])
    drawn = {str(t.number): t.params for t in study.trials}
    assert len(children) == 3 and all(c.info.status == "FINISHED" and "mlops.duplicate_of" not in c.data.tags for c in children)
    cards = _trial_cards(client, children)
    for child in children:
        params = drawn[child.data.params["trial_number"]]
        assert {name: child.data.params[name] for name in space} == {name: str(value) for name, value in params.items()}
        card = cards[child.info.run_id]
        assert card["serving"] == {"merge_adapter": params["serving.merge_adapter"], "precision": params["serving.precision"]}
        assert card["structure"]["num_hidden_layers"] == 2 - params["drop_layers"] and card["max_length"] == params["max_length"]
        assert child.data.metrics["dropped_layers"] == params["drop_layers"]
    assert len({tuple(sorted(p.items())) for p in drawn.values()}) == 3, "three points of the grid"


@pytest.mark.slow
def test_decoding_and_budget_knobs_are_searched_for_a_generating_task(tracking: str) -> None:
    space = {
        "max_new_tokens": {"type": "int", "low": 4, "high": 6},
        "num_beams": {"type": "int", "low": 2, "high": 3},
        "length_penalty": {"type": "float", "low": -1.0, "high": 1.0},
        "max_document_tokens": {"type": "categorical", "choices": [48, 96]},
    }
    overrides = {"search.n_trials": 1, "search.space": space, "generation.decoding": "beam", "training.max_steps": 2}
    config = load_config(str(TINY_SUMMARIZER), overrides)
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    (child,) = [r for r in _runs(client, "tiny-summarizer") if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    study = optuna.load_study(study_name=result.study_name, storage=client.get_run(result.parent_run_id).data.params["storage"])
    (trial,) = study.trials
    assert child.info.status == "FINISHED" and set(trial.params) == set(space)
    assert {name: child.data.params[name] for name in space} == {name: str(value) for name, value in trial.params.items()}
    generation = _trial_cards(client, [child])[child.info.run_id]["generation"]
    assert {name: generation[name] for name in space} == trial.params, "the served model decodes as the trial did"
