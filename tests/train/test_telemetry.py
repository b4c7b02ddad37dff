"""Training telemetry: every training run logs its peak memory, throughput and (where the device's peak is known) MFU;
FLOPs per token follow what trains; trial runs log MLflow system metrics."""

from __future__ import annotations

import mmap
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.train import TrainingTelemetry, flops_per_token, peak_memory_gib, reset_peak_memory
from mlops.train import telemetry as telemetry_module
from mlops.train.finetune import prepare, train_and_log
from tests.helpers import TINY_CONFIG, TINY_SUMMARIZER


def test_flops_per_token_counts_forward_backprop_path_and_weight_gradients() -> None:
    model = torch.nn.Sequential(torch.nn.Embedding(50, 4), torch.nn.Linear(4, 6, bias=False), torch.nn.Linear(6, 3, bias=False))
    assert flops_per_token(model) == 6 * (24 + 18)  # full fine-tuning: 6N, the embedding lookup not counted
    model[1].weight.requires_grad_(False)
    assert flops_per_token(model) == 2 * 42 + 2 * 18 + 2 * 18  # nothing trains below the top layer: no backward through it
    model[2].weight.requires_grad_(False)
    model[1].weight.requires_grad_(True)
    assert flops_per_token(model) == 2 * 42 + 2 * 42 + 2 * 24


@pytest.mark.parametrize("kernel_resets", [True, False], ids=["clear_refs", "no_clear_refs"])
def test_telemetry_counts_training_tokens_only_and_resets_the_peak(kernel_resets: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not kernel_resets:  # a kernel (or sandbox) without /proc/self/clear_refs: the resident-set sampler measures
        monkeypatch.setattr(telemetry_module, "_CLEAR_REFS", "/nonexistent/clear_refs")
        monkeypatch.setattr(telemetry_module, "_SAMPLER", telemetry_module._RssSampler())
    model = torch.nn.Sequential(torch.nn.Embedding(50, 4))
    telemetry = TrainingTelemetry(model, "cpu", "tokens")
    ids, mask = torch.ones(3, 5, dtype=torch.long), torch.tensor([[1] * 5, [1] * 2 + [0] * 3, [1] * 4 + [0]])
    with telemetry.measuring():
        model.train()
        model(ids)  # positional, no mask: every position counts
        telemetry._count(model, (), {"input_ids": ids, "attention_mask": mask})
        model.eval()
        model(ids)  # evaluation: not counted
        ballast = mmap.mmap(-1, 256 * 2**20)  # 256 MiB of fresh pages while measuring, whatever the heap holds free
        for page in range(0, len(ballast), mmap.PAGESIZE):
            ballast[page] = 1
        peak = peak_memory_gib("cpu")
        ballast.close()  # unmapped: the pages leave the resident set
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
