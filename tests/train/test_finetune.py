"""Training really changes the adapter, leaves the base frozen, logs curves, and saves only the adapter."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.models import MODEL_CARD
from mlops.train.finetune import prepare, train_and_log
from mlops.train.tasks import build_classifier
from tests.helpers import TINY_CONFIG


def test_training_changes_adapter_and_logs_curves(tracking: str, tmp_path: Path) -> None:
    config = load_config(str(TINY_CONFIG), {"training.max_steps": 10, "training.learning_rate": 1e-3})
    prepared = prepare(config)
    initial, _ = build_classifier(prepared.source, 2, config.training, config.model)  # same seed-independent base; LoRA A random, B zero
    initial_state = {k: v.clone() for k, v in initial.state_dict().items()}

    mlflow.set_experiment("t")
    with mlflow.start_run() as run:
        result = train_and_log(config, prepared, tmp_path / "adapter")

    from peft import PeftModel

    trained = PeftModel.from_pretrained(prepared.source.load_classifier(2), str(tmp_path / "adapter"))
    state = trained.state_dict()
    lora_b = [k for k in state if "lora_B" in k]
    head = [k for k in state if "classifier" in k and "modules_to_save" in k]
    assert lora_b and head
    assert any(not torch.equal(state[k], torch.zeros_like(state[k])) for k in lora_b), "LoRA B stayed at its zero init"
    assert any(not torch.equal(state[k], initial_state[k]) for k in head if k in initial_state), "the head did not train"
    base_key = next(k for k in state if k.endswith("attention.self.query.base_layer.weight"))
    assert torch.equal(state[base_key], initial_state[base_key]), "base weights must stay frozen"

    files = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", MODEL_CARD} <= files
    assert json.loads((tmp_path / "adapter" / MODEL_CARD).read_text())["base_model"] == "tiny-random-bert"

    client = MlflowClient()
    logged = client.get_run(run.info.run_id)
    assert logged.data.params["learning_rate"] == "0.001" and logged.data.params["seed"] == "42"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) >= 4
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")][:2] == [2, 4]
    assert "eval_f1" in logged.data.metrics and "test_f1" in logged.data.metrics
    assert 0.0 <= result.test["test_f1"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"adapter", "environment.json", "confusion_matrix.json"} <= artifacts
    env = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="environment.json")).read_text())
    assert env["torch"] == torch.__version__ and env["packages"]["peft"] and any(p.startswith("mlflow==") for p in env["pip_freeze"])
    assert "commit" in env["git"] and "dirty" in env["git"]
    assert {d.dataset.name for d in logged.inputs.dataset_inputs} == {"demo:fraud:train", "demo:fraud:validation", "demo:fraud:test"}


@pytest.mark.slow  # two trainings
def test_same_seed_same_result(tracking: str, tmp_path: Path) -> None:
    config = load_config(str(TINY_CONFIG), {"training.max_steps": 4})
    prepared = prepare(config)
    mlflow.set_experiment("t")
    losses = []
    for i in range(2):
        with mlflow.start_run():
            result = train_and_log(config, prepared, tmp_path / f"a{i}")
        losses.append(result.test["test_loss"])
    assert losses[0] == losses[1]
