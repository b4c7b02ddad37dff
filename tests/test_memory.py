"""Memory-aware trials and telemetry: an out-of-memory trial is retried with a smaller batch or pruned, never fails the
sweep; every trial's model is gone before the next one is built; every training run logs its peak memory, throughput
and (where the device's peak is known) MFU; trial runs log MLflow system metrics."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
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
from mlops.train import TrainingTelemetry, flops_per_token, peak_memory_gib, reset_peak_memory
from mlops.train.finetune import prepare, train_and_log

from .conftest import TESTS, TINY_CONFIG

TINY_SUMMARIZER = TESTS / "configs" / "tiny-summarizer.yaml"


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


def test_flops_per_token_counts_forward_backprop_path_and_weight_gradients() -> None:
    model = torch.nn.Sequential(torch.nn.Embedding(50, 4), torch.nn.Linear(4, 6, bias=False), torch.nn.Linear(6, 3, bias=False))
    assert flops_per_token(model) == 6 * (24 + 18)  # full fine-tuning: 6N, the embedding lookup not counted
    model[1].weight.requires_grad_(False)
    assert flops_per_token(model) == 2 * 42 + 2 * 18 + 2 * 18  # nothing trains below the top layer: no backward through it
    model[2].weight.requires_grad_(False)
    model[1].weight.requires_grad_(True)
    assert flops_per_token(model) == 2 * 42 + 2 * 42 + 2 * 24


def test_telemetry_counts_training_tokens_only_and_resets_the_peak() -> None:
    model = torch.nn.Sequential(torch.nn.Embedding(50, 4))
    telemetry = TrainingTelemetry(model, "cpu", "tokens")
    ids, mask = torch.ones(3, 5, dtype=torch.long), torch.tensor([[1] * 5, [1] * 2 + [0] * 3, [1] * 4 + [0]])
    with telemetry.measuring():
        model.train()
        model(ids)  # positional, no mask: every position counts
        telemetry._count(model, (), {"input_ids": ids, "attention_mask": mask})
        model.eval()
        model(ids)  # evaluation: not counted
        ballast = torch.ones(64 * 2**20, dtype=torch.float32)  # 256 MiB while measuring
        ballast.add_(1)
        peak = peak_memory_gib("cpu")
        del ballast
    assert (telemetry.samples, int(telemetry.tokens)) == (6, 15 + 11)
    metrics = telemetry.metrics(train_seconds=2.0)
    assert metrics["train_tokens_per_second"] == pytest.approx(13.0) and "mfu" not in metrics  # no peak FLOPs known for a CPU
    assert peak >= 0.25
    reset_peak_memory("cpu")
    assert peak_memory_gib("cpu") < peak - 0.2, "the peak starts afresh"
    model(ids)  # the hook is gone
    assert telemetry.samples == 6


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989.0),
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("Tesla V100-SXM2-16GB", 125.0),
        ("NVIDIA A10G", None),
        ("Some GPU", None),
    ],
)
def test_peak_flops_by_device_name(monkeypatch: pytest.MonkeyPatch, name: str, peak: float | None) -> None:
    from mlops.train import peak_tflops

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    assert peak_tflops("cuda") == peak
    assert peak_tflops("cpu") is None


@pytest.mark.parametrize(("config_file", "unit"), [(TINY_CONFIG, "samples"), (TINY_SUMMARIZER, "tokens")], ids=["classifier", "summarizer"])
def test_finetune_logs_telemetry(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_file: Path, unit: str) -> None:
    import mlops.train.telemetry

    monkeypatch.setattr(mlops.train.telemetry, "peak_tflops", lambda device: 1e-6)  # a made-up 1 MFLOP/s card: MFU is computed
    config = load_config(str(config_file), {"training.max_steps": 2})
    prepared = prepare(config)
    mlflow.set_experiment("telemetry")
    with mlflow.start_run() as run:
        train_and_log(config, prepared, tmp_path / "adapter")
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    other = "tokens" if unit == "samples" else "samples"
    assert metrics[f"train_{unit}_per_second"] > 0 and f"train_{other}_per_second" not in metrics
    assert 0.05 < metrics["peak_memory_gib"] < 64
    assert 4 * metrics["trainable_params"] < metrics["flops_per_token"] < 6 * metrics["total_params"]
    if unit == "tokens":
        assert metrics["mfu"] == pytest.approx(metrics["train_tokens_per_second"] * metrics["flops_per_token"] / 1e6)
    else:
        assert metrics["mfu"] > 0


def test_system_metrics_sampling_interval_defaults_unless_the_environment_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from mlops.tracking import SYSTEM_METRICS_INTERVAL, default_system_metrics_interval

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "")
    default_system_metrics_interval()
    assert float(os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"]) == SYSTEM_METRICS_INTERVAL == 5.0
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "30")
    default_system_metrics_interval()
    assert os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] == "30"
