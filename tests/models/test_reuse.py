"""What the trials of one worker share: the base model (loaded once, copied per trial) and the tokenised splits. A
trial on the reused base trains exactly as on a fresh load, also after a trial that pruned and froze its copy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.models import ModelSource, ReusedBaseSource, resolve_source
from mlops.search import SweepOptions, run_sweep
from mlops.tracking import seed_everything
from mlops.train import Prepared, prepare, train_and_log
from mlops.train.tasks import task_for
from mlops.train.tasks._base import TaskInputs
from tests.helpers import TINY_CONFIG


class _CountingSource(ModelSource):
    """A source that counts its loads and, like a pretrained checkpoint, draws its new head from the global RNG."""

    name = "counting"
    description = "counts loads"

    def __init__(self, inner: ModelSource) -> None:
        self.inner, self.loads = inner, 0

    def load_tokenizer(self) -> Any:
        return self.inner.load_tokenizer()

    def load_classifier(self, num_labels: int) -> Any:
        self.loads += 1
        model = self.inner.load_classifier(num_labels)
        model.classifier.reset_parameters()  # a new head, drawn from the caller's RNG
        return model


def _trial(prepared: Prepared, tmp: Path, name: str, **training: object) -> dict[str, float]:
    config = load_config(str(TINY_CONFIG), {"training.max_steps": 6, **{f"training.{k}": v for k, v in training.items()}})
    with mlflow.start_run(run_name=name) as run:
        train_and_log(config, prepared, tmp / name)
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(("eval_", "test_")) and not k.endswith(("_runtime", "_per_second"))}


@pytest.mark.slow
def test_a_trial_on_the_reused_base_matches_one_on_a_fresh_load(tracking: str, tmp_path: Path) -> None:
    mlflow.set_experiment("reuse")  # this test's store: not an experiment an earlier test left active
    prepared = prepare(load_config(str(TINY_CONFIG)))
    counting = _CountingSource(resolve_source("tiny-random-bert"))
    fresh = _trial(replace(prepared, source=counting), tmp_path, "fresh", lora_r=8)
    assert counting.loads == 1

    reused = ReusedBaseSource(counting)
    shared = replace(prepared, source=reused)
    structural = _trial(shared, tmp_path, "structural", lora_r=4, prune_heads=0.5, freeze_ratio=0.5)
    again = _trial(shared, tmp_path, "reused", lora_r=8)

    assert counting.loads == 2 and reused.fresh_loads == 1, "the third trial loads nothing: it copies the base"
    assert structural != fresh, "the structural trial trained something else"
    assert {"eval_f1", "eval_loss", "test_f1", "test_loss"} <= again.keys() and again.keys() == fresh.keys()
    for name, value in fresh.items():
        assert again[name] == pytest.approx(value, abs=1e-6), name


def test_reused_base_copies_are_independent_and_a_new_seed_loads_afresh(tmp_path: Path) -> None:
    counting = _CountingSource(resolve_source("tiny-random-bert"))
    reused = ReusedBaseSource(counting)
    seed_everything(1)
    first = reused.load_classifier(2)
    after_first = torch.rand(1)
    seed_everything(1)
    second = reused.load_classifier(2)
    assert torch.rand(1) == after_first, "the RNG continues as after a fresh load"
    assert first is not second and all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    with torch.no_grad():
        first.classifier.weight.add_(1.0)
    assert not torch.equal(first.classifier.weight, second.classifier.weight), "a trial's changes stay in its copy"
    assert counting.loads == 1
    seed_everything(2)
    other = reused.load_classifier(2)
    assert counting.loads == 2 and not torch.equal(other.classifier.weight, second.classifier.weight)


def test_tokenised_splits_are_shared_until_a_setting_they_depend_on_changes() -> None:
    config = load_config(str(TINY_CONFIG))
    prepared = prepare(config)
    task = task_for("classification")

    def sets(max_length: int) -> Any:
        cfg = load_config(str(TINY_CONFIG), {"model.max_length": max_length})
        return task.training_sets(TaskInputs(cfg, cfg.training, cfg.generation, prepared.data, prepared.source, prepared.tokenizer))

    first, second, longer = sets(32), sets(32), sets(64)
    assert first.train is second.train and first.test is second.test
    assert longer.train is not first.train
    assert max(len(r["input_ids"]) for r in longer.train.rows) > max(len(r["input_ids"]) for r in first.train.rows)


@pytest.mark.slow
def test_a_sweep_loads_its_base_once(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []
    bert = resolve_source("tiny-random-bert")
    original = type(bert).load_classifier

    def counted(self: Any, num_labels: int) -> Any:
        loads.append(num_labels)
        return original(self, num_labels)

    monkeypatch.setattr(type(bert), "load_classifier", counted)
    # without the serving cost, which loads the base as `mlflow models serve` does, once per trial (counted below)
    result = run_sweep(load_config(str(TINY_CONFIG), {"search.n_trials": 3, "cost.examples": 0}), SweepOptions(promote=False))
    assert result.trials_run == 3 and len(loads) == 1
    loads.clear()
    run_sweep(load_config(str(TINY_CONFIG), {"search.n_trials": 2}), SweepOptions(promote=False))
    assert len(loads) == 1 + 2, "training's base once; each trial's served model loads its own"


def test_a_causal_lm_base_is_reused_too() -> None:
    reused = ReusedBaseSource(resolve_source("tiny-random-llama"))
    seed_everything(0)
    first = reused.load_causal_lm()
    seed_everything(0)
    second = reused.load_causal_lm()
    assert reused.fresh_loads == 1 and first is not second
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))
