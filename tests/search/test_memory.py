"""Memory-aware trials: an out-of-memory trial is retried with a smaller batch or pruned, never fails the sweep; every
trial's model is gone before the next one is built. What each run logs about its memory: tests/train/test_telemetry.py."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import Run

from mlops.config import load_config
from mlops.errors import ConfigError, SweepError
from mlops.search import SweepOptions, run_sweep
from mlops.search.memory import smaller_batch
from mlops.tracking import seed_everything
from tests.helpers import TINY_CONFIG


@dataclass
class Injected:
    """What the patched trainer saw: per attempt (one Trainer each), its batch settings and the rows of each micro-batch;
    and, each time a model was built, whether the models built before it were still alive."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    models: list[weakref.ref[Any]] = field(default_factory=list)
    alive_at_build: list[list[bool]] = field(default_factory=list)


Injection = tuple[Injected, dict[str, Any]]


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> Iterator[Injection]:
    """Out of memory on demand: `plan["oom"](attempt number, per-device batch)` says whether this attempt's training
    step at `plan["step"]` raises `torch.OutOfMemoryError`; `plan["fail"]` (attempt numbers) raise a plain error."""
    from transformers import Trainer

    from mlops.train.tasks.classification import Classification

    seen = Injected()
    plan: dict[str, Any] = {"oom": lambda attempt, batch: False, "fail": (), "step": 1}
    real_step, real_build = Trainer.training_step, Classification.build_model

    def training_step(self: Any, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if not hasattr(self, "attempt"):  # the first step of a new Trainer: one per attempt
            self.attempt = len(seen.attempts)
            seen.attempts.append(
                {"batch_size": self.args.per_device_train_batch_size, "accumulation": self.args.gradient_accumulation_steps, "rows": []}
            )
        attempt = self.attempt
        seen.attempts[attempt]["rows"].append(int(inputs["input_ids"].shape[0]))
        if self.state.global_step == plan["step"]:
            if plan["oom"](attempt, self.args.per_device_train_batch_size):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
            if attempt in plan["fail"]:
                raise RuntimeError("injected failure")
        return real_step(self, model, inputs, *args, **kwargs)

    def build_model(self: Any, inputs: Any) -> Any:
        seen.alive_at_build.append([ref() is not None for ref in seen.models])
        model, report = real_build(self, inputs)
        seen.models.append(weakref.ref(model))
        return model, report

    # Transformers' training stack is imported once per process, by the first seeding. Done here, not inside the first
    # trial: bitsandbytes logs a warning holding its import error there, and pytest's log capture keeps that record,
    # whose traceback would keep the calling frames (the first trial's `fit`, with its model) alive to the test's end.
    seed_everything(0)
    monkeypatch.setattr(Trainer, "training_step", training_step)
    monkeypatch.setattr(Classification, "build_model", build_model)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")  # tiny trials: a few samples each
    yield seen, plan


def _trial_runs(client: MlflowClient, parent_run_id: str) -> dict[str, Run]:
    experiment = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs([experiment])
    return {r.data.params["trial_number"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_run_id}


def _states(client: MlflowClient, result: Any) -> list[str]:
    storage = client.get_run(result.parent_run_id).data.params["storage"]
    return [t.state.name for t in optuna.load_study(study_name=result.study_name, storage=storage).trials]


@pytest.mark.slow
def test_halve_batch_retries_in_the_same_run_with_the_same_effective_batch(tracking: str, injected: Injection) -> None:
    seen, plan = injected
    plan["oom"] = lambda attempt, batch: batch > 8  # fits at 8 per device
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 1, "training.max_steps": 3})
    assert config.search.on_oom == "halve_batch" and config.training.batch_size == 32
    result = run_sweep(config, SweepOptions(promote=False))

    client = MlflowClient()
    run = _trial_runs(client, result.parent_run_id)["0"]
    assert run.info.status == "FINISHED" and _states(client, result) == ["COMPLETE"]
    tags = run.data.tags
    assert tags["mlops.oom_halving.1"].startswith("batch_size 32 -> 16, gradient_accumulation_steps 1 -> 2 (out of memory, peak ")
    assert tags["mlops.oom_halving.2"].startswith("batch_size 16 -> 8, gradient_accumulation_steps 2 -> 4 (out of memory, peak ")
    assert "mlops.oom_halving.3" not in tags and "mlops.infeasible" not in tags and "error" not in tags
    params = run.data.params
    assert (params["batch_size"], params["gradient_accumulation_steps"]) == ("32", "1")  # what the trial was given
    assert (params["batch_size_effective"], params["gradient_accumulation_steps_effective"]) == ("8", "4")  # what it trained with
    assert params["effective_batch_size"] == "32"
    # three attempts, each out of memory after one optimizer step until the last, which trains all 3 steps with 8 x 4 rows
    assert [(a["batch_size"], a["accumulation"]) for a in seen.attempts] == [(32, 1), (16, 2), (8, 4)]
    assert seen.attempts[0]["rows"] == [32, 32] and seen.attempts[1]["rows"] == [16] * 3
    assert seen.attempts[2]["rows"] == [8] * 12
    assert "eval_f1" in run.data.metrics and "test_f1" in run.data.metrics
    # the model of each attempt that ran out of memory was gone before the next one was built, and the last after the trial
    assert seen.alive_at_build == [[], [False], [False, False]]
    assert all(ref() is None for ref in seen.models)
    # system metrics on the trial run, from a sampling thread that is gone once the sweep returns
    system = {k for k in run.data.metrics if k.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
    assert len(client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")) >= 1
    assert not [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]
    assert not {k for k in client.get_run(result.parent_run_id).data.metrics if k.startswith("system/")}, "only trial runs sample"


@pytest.mark.slow
def test_prune_policy_prunes_the_trial_and_the_sweep_goes_on(tracking: str, injected: Injection) -> None:
    seen, plan = injected
    plan["oom"] = lambda attempt, batch: attempt == 0
    plan["fail"] = (1,)
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 3, "training.max_steps": 3, "search.on_oom": "prune"})
    result = run_sweep(config, SweepOptions(promote=False))

    client = MlflowClient()
    runs = _trial_runs(client, result.parent_run_id)
    assert _states(client, result) == ["PRUNED", "FAIL", "COMPLETE"]
    assert [runs[n].info.status for n in ("0", "1", "2")] == ["KILLED", "FAILED", "FINISHED"]
    oom = runs["0"].data.tags
    assert oom["mlops.infeasible"].startswith("out of memory at batch_size 32 x gradient_accumulation_steps 1; peak ")
    assert " GiB on cpu: CUDA out of memory. Tried to allocate 20.00 GiB (injected)" in oom["mlops.infeasible"]
    peak = float(oom["mlops.infeasible"].split("; peak ")[1].split(" GiB")[0])
    assert 0.05 < peak < 64, "the peak resident memory of the process while the trial trained"
    assert oom["pruned"] == "true" and oom["pruned_reason"] == oom["mlops.infeasible"] and "pruned_at_epoch" not in oom
    assert "error" not in oom and not [k for k in oom if k.startswith("mlops.oom_halving")]
    assert runs["1"].data.tags["error"] == "RuntimeError: injected failure"
    assert len(seen.attempts) == 3, "pruned at once: no retry"
    parent = client.get_run(result.parent_run_id).data.metrics
    assert (parent["n_pruned"], parent["n_failed"], parent["n_complete"]) == (1, 1, 1)
    # neither the pruned nor the failed trial's model outlived its trial
    assert seen.alive_at_build == [[], [False], [False, False]]
    assert all(ref() is None for ref in seen.models)


@pytest.mark.slow
def test_halving_down_to_batch_one_then_pruned(tracking: str, injected: Injection) -> None:
    seen, plan = injected
    plan["oom"] = lambda attempt, batch: True
    plan["step"] = 0
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 1, "training.batch_size": 6, "training.gradient_accumulation_steps": 2})
    with pytest.raises(SweepError, match="no trial of study .* completed"):
        run_sweep(config, SweepOptions(promote=False))

    client = MlflowClient()
    (trial,) = [r for r in client.search_runs([client.get_experiment_by_name("tiny").experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    parent = client.get_run(trial.data.tags["mlflow.parentRunId"])
    study = optuna.load_study(study_name=parent.data.tags["optuna.study_name"], storage=parent.data.params["storage"])
    assert [t.state.name for t in study.trials] == ["PRUNED"] and trial.info.status == "KILLED"
    tags = trial.data.tags
    assert [(a["batch_size"], a["accumulation"]) for a in seen.attempts] == [(6, 2), (3, 4), (1, 12)]  # 12 rows per step throughout
    assert tags["mlops.oom_halving.1"].startswith("batch_size 6 -> 3, gradient_accumulation_steps 2 -> 4")
    assert tags["mlops.oom_halving.2"].startswith("batch_size 3 -> 1, gradient_accumulation_steps 4 -> 12")
    assert tags["mlops.infeasible"].startswith("out of memory at batch_size 1 x gradient_accumulation_steps 12; peak ")
    assert all(ref() is None for ref in seen.models)


@pytest.mark.parametrize(("batch", "smaller"), [(32, 16), (12, 6), (9, 3), (7, 1), (2, 1), (1, 1)])
def test_a_smaller_batch_divides_the_batch(batch: int, smaller: int) -> None:
    assert smaller_batch(batch) == smaller


def test_on_oom_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"search.on_oom: must be one of 'halve_batch', 'prune', got 'shrink'"):
        load_config(str(TINY_CONFIG), {"search.on_oom": "shrink"})
