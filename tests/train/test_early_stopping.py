"""Early stopping keeps the best evaluation's adapter: a run that stops early logs the best point of its curve as its
final value and its adapter is the best checkpoint's; this holds when resumed, with several seeds and with QLoRA; the
generalisation gap is logged; bad settings are one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mlflow
import pytest
import torch
import yaml
from mlflow import MlflowClient
from safetensors.torch import load_file

from mlops.cli import main
from mlops.config import load_config
from mlops.train import CheckpointPlan
from mlops.train.finetune import prepare, train_and_log
from tests.helpers import TESTS, TINY_CONFIG, write

TINY_SUMMARIZER = TESTS / "configs" / "tiny-summarizer.yaml"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# No evaluation after the first improves a [0, 1] metric by 1: the best is always epoch 1, whatever the weights do.
NEVER_IMPROVES = 1.0


def _config(base: Path = TINY_CONFIG, **overrides: Any) -> Any:
    """`base` without `max_steps` (every epoch trains in full), small data, with `overrides`."""
    data = yaml.safe_load(base.read_text())
    data["training"].pop("max_steps", None)
    data["dataset"]["max_samples"] = data["dataset"].get("max_samples", 300)
    return _with(data, overrides)


def _with(data: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from mlops.config import build

    for key, value in overrides.items():
        section, name = key.split(".", 1)
        data.setdefault(section, {})[name] = value
    errors: list[str] = []
    from mlops.config import ExperimentConfig

    config = build(ExperimentConfig, data, "", errors)
    assert not errors, errors
    config.source_file = str(TINY_CONFIG)
    return config


def _train(config: Any, out: Path, checkpoints: CheckpointPlan | None = None) -> tuple[Any, str]:
    prepared = prepare(config)
    mlflow.set_experiment("early-stopping")
    with mlflow.start_run() as run:
        result = train_and_log(config, prepared, out, checkpoints=checkpoints)
    return result, run.info.run_id


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / ADAPTER_WEIGHTS))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _logged_adapter(run_id: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="adapter"))


def _curve(run_id: str, metric: str) -> dict[int, float]:
    """The metric's evaluation points by step (the first value logged at each step)."""
    points: dict[int, float] = {}
    for m in sorted(MlflowClient().get_metric_history(run_id, metric), key=lambda m: (m.step, m.timestamp)):
        points.setdefault(m.step, m.value)
    return points


def test_an_overfitting_run_stops_early_and_keeps_its_best_adapter(tracking: str, tmp_path: Path) -> None:
    config = _config(**{"training.learning_rate": 5e-3, "training.epochs": 8, "training.early_stopping": {"patience": 1}})
    checkpoints = CheckpointPlan(tmp_path / "checkpoints", keep=100)
    result, run_id = _train(config, tmp_path / "adapter", checkpoints)

    run = MlflowClient().get_run(run_id)
    metrics = run.data.metrics
    assert metrics["stopped_early"] == 1.0 and metrics["epochs_run"] < 8
    curve = _curve(run_id, "eval_f1")
    assert len(curve) == metrics["epochs_run"]
    assert metrics["eval_f1"] == max(curve.values()) == curve[int(metrics["best_step"])]
    assert int(metrics["best_step"]) < max(curve), "stopped after patience evaluations past the best"
    assert result.validation["eval_f1"] == metrics["eval_f1"]
    assert run.data.params["early_stopping_patience"] == "1"

    logged = _weights(_logged_adapter(run_id))
    best = _weights(checkpoints.directory / f"checkpoint-{int(metrics['best_step'])}")
    last = _weights(checkpoints.directory / f"checkpoint-{max(curve)}")
    assert _same(logged, best), "the logged adapter must be the best evaluation's"
    assert not _same(logged, last), "training moved on after the best evaluation"


def test_the_gap_is_train_minus_validation_at_the_kept_evaluation(tracking: str, tmp_path: Path) -> None:
    settings = {"patience": 1, "min_delta": NEVER_IMPROVES}
    config = _config(**{"training.epochs": 3, "training.early_stopping": settings})
    result, run_id = _train(config, tmp_path / "adapter")
    metrics = MlflowClient().get_run(run_id).data.metrics
    train, validation = _curve(run_id, "train_f1"), _curve(run_id, "eval_f1")
    assert sorted(train) == sorted(validation) and len(train) == 2, "one training-sample point per evaluation"
    best = int(metrics["best_step"])
    assert metrics["best_epoch"] == 1 and best == min(validation)
    assert metrics["generalization_gap"] == pytest.approx(train[best] - validation[best])
    assert metrics["train_f1"] == train[best], "the final train_f1 is the kept evaluation's"
    assert result.stopping is not None and result.stopping.epochs_saved == 1


def test_resumed_run_keeps_the_best_adapter_of_before_the_interruption(tracking: str, tmp_path: Path) -> None:
    settings = {"patience": 2, "min_delta": NEVER_IMPROVES}
    config = _config(**{"training.epochs": 5, "training.early_stopping": settings})
    first = CheckpointPlan(tmp_path / "first", keep=100)
    _train(config, tmp_path / "a", first)
    steps = sorted(int(p.name.split("-")[1]) for p in first.directory.iterdir())
    assert len(steps) == 3, "best at epoch 1, stopped after two more"

    # a run lost after epoch 2 resumes from its checkpoint: the best (epoch 1) is no longer in the weights
    resumed = CheckpointPlan(tmp_path / "second", keep=100, resume_from=first.directory / f"checkpoint-{steps[1]}")
    result, resumed_id = _train(config, tmp_path / "b", resumed)
    assert result.stopping is not None and result.stopping.best_step == steps[0] and result.stopping.stopped_early
    assert _same(_weights(_logged_adapter(resumed_id)), _weights(first.directory / f"checkpoint-{steps[0]}"))
    assert not _same(_weights(tmp_path / "b"), _weights(first.directory / f"checkpoint-{steps[1]}"))


def test_several_seeds_each_stop_and_the_parent_counts_the_epochs_saved(tracking: str, tmp_path: Path) -> None:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["training"].pop("max_steps")
    data["dataset"]["max_samples"] = 300
    data["training"] |= {"epochs": 3, "early_stopping": {"patience": 1, "min_delta": NEVER_IMPROVES}}
    data["search"] |= {"n_trials": 1, "seeds_per_trial": 2, "gap_threshold": 0.0}
    data["registry"]["policy"] = str(TESTS / "registry" / "tiny-detector.yaml")
    path = write(tmp_path / "seeds.yaml", yaml.safe_dump(data))
    assert main(["sweep", "--config", str(path)]) == 0

    client = MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.run_name.startswith("sweep"))
    assert parent.data.metrics["epochs_saved_by_early_stopping"] == 2.0, "each seed trained 2 of its 3 epochs"
    seeds = [r for r in runs if "mlops.seed_of_run" in r.data.tags]
    assert len(seeds) == 2
    for seed in seeds:
        assert seed.data.metrics["stopped_early"] == 1.0 and seed.data.metrics["epochs_run"] == 2.0
        curve = _curve(seed.info.run_id, "eval_f1")
        assert seed.data.metrics["eval_f1"] == curve[min(curve)], "the kept evaluation is the first"
    report = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="sweep_report.md")).read_text()
    assert "saved 2 trial-epochs" in report


def test_qlora_run_keeps_the_best_adapter(tracking: str, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    settings = {"patience": 1, "min_delta": NEVER_IMPROVES}
    config = _config(
        TINY_SUMMARIZER,
        **{"model.quantization": "nf4", "training.epochs": 3, "training.early_stopping": settings},
    )
    checkpoints = CheckpointPlan(tmp_path / "checkpoints", keep=100)
    _, run_id = _train(config, tmp_path / "adapter", checkpoints)
    metrics = MlflowClient().get_run(run_id).data.metrics
    assert metrics["stopped_early"] == 1.0 and metrics["epochs_run"] == 2.0
    steps = sorted(int(p.name.split("-")[1]) for p in checkpoints.directory.iterdir())
    logged = _weights(_logged_adapter(run_id))
    assert logged and all("lora_" in name for name in logged)
    assert _same(logged, _weights(checkpoints.directory / f"checkpoint-{steps[0]}"))
    assert not _same(logged, _weights(checkpoints.directory / f"checkpoint-{steps[-1]}"))
    assert "train_rougeL" in metrics and "generalization_gap" in metrics, "the gap on eval_subset training examples"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"patience": 0}, r"bad\.yaml: training\.early_stopping\.patience: must be >= 1, got 0$"),
        ({"min_delta": -0.1}, r"bad\.yaml: training\.early_stopping\.min_delta: must be >= 0, got -0\.1$"),
        ({"metric": "eval_rougeL"}, r"bad\.yaml: training\.early_stopping\.metric: 'eval_rougeL' is not logged by classification"),
    ],
)
def test_bad_settings_are_one_line_exit_2(
    settings: dict[str, Any], message: str, tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["training"]["early_stopping"] = settings
    path = write(tmp_path / "bad.yaml", yaml.safe_dump(data))
    assert main(["finetune", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.search(message, err), err
    assert load_config(str(TINY_CONFIG)).training.early_stopping is None, "off unless a config opts in"
