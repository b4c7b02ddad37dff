"""CUDA paths, run by `benchmarks/gpu_check.sh` on a GPU machine (`pytest -m gpu`).

The default test command deselects them (`-m "not gpu"` in pyproject); without CUDA they fail
loudly rather than skip, so a GPU run that silently fell back to CPU cannot pass.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.train import peak_tflops, pick_device
from mlops.train.finetune import prepare, train_and_log
from tests.helpers import TINY_CONFIG, TINY_SUMMARIZER

pytestmark = pytest.mark.gpu


def test_cuda_is_visible_and_picked() -> None:
    assert torch.cuda.is_available(), "no CUDA device: run these tests on a GPU machine"
    device, precision = pick_device("auto")
    assert device == "cuda" and precision in ("bf16", "fp16")


@pytest.mark.parametrize("config_file", [TINY_CONFIG, TINY_SUMMARIZER], ids=["classifier", "summarizer"])
def test_training_on_cuda_changes_the_adapter(tracking: str, tmp_path: Path, config_file: Path) -> None:
    from safetensors.torch import load_file

    config = load_config(str(config_file), {"training.device": "cuda", "training.max_steps": 6, "training.learning_rate": 1e-3})
    prepared = prepare(config)
    mlflow.set_experiment("gpu")
    with mlflow.start_run() as run:
        train_and_log(config, prepared, tmp_path / "adapter")
    weights = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(bool(v.abs().sum() > 0) for v in lora_b), "LoRA B stayed at its zero init on CUDA"
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.info.status == "FINISHED"
    assert logged.data.params["device"] == "cuda"
    assert MlflowClient().get_metric_history(run.info.run_id, "train_loss"), "no loss curve logged"
    metrics = logged.data.metrics  # telemetry: CUDA's peak allocation, and MFU where the card's peak is in the table
    assert 0 < metrics["peak_memory_gib"] < torch.cuda.get_device_properties(0).total_memory / 2**30
    assert ("mfu" in metrics) == (peak_tflops("cuda") is not None) and 0 < metrics.get("mfu", 0.5) < 1


def test_bf16_matmul_on_cuda_matches_fp32() -> None:
    a, b = torch.randn(256, 256, device="cuda"), torch.randn(256, 256, device="cuda")
    exact = a @ b
    approx = (a.bfloat16() @ b.bfloat16()).float()
    assert torch.allclose(exact, approx, rtol=0.05, atol=0.5)
