"""Summarisation end to end on a tiny LLaMA: training, ROUGE curves, the predictions table, sweep, registry, serving, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from safetensors.torch import load_file

from mlops.config import load_config
from mlops.train.finetune import run_finetune
from tests.helpers import TESTS, TINY_SUMMARIZER, mlflow_run, write


@pytest.mark.slow  # trains, then generates for ROUGE: about 15 CPU-seconds
def test_finetune_trains_the_adapter_and_logs_rouge(tracking: str) -> None:
    run_id = run_finetune(load_config(str(TINY_SUMMARIZER)))
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    metrics, params = run.data.metrics, run.data.params
    for name in ("eval_rougeL", "eval_rouge1", "eval_rouge2", "eval_key_term_recall", "test_rougeL", "test_key_term_recall"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["train_examples"] == 32 and "train_documents_truncated" in metrics and "train_summaries_truncated" in metrics
    assert {"decoding", "temperature", "max_new_tokens", "max_document_tokens", "max_summary_tokens"} <= set(params)
    assert len(client.get_metric_history(run_id, "train_loss")) > 1
    assert [m.step for m in client.get_metric_history(run_id, "eval_rougeL")][-1] == 4

    table = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="predictions.json")).read_text())
    assert table["columns"][:4] == ["document", "reference", "prediction", "rougeL"] and len(table["data"]) == 5

    adapter = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="adapter"))
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and any(bool(t.abs().sum() > 0) for t in lora_b), "LoRA B starts at zero: training must have moved it"
    card = json.loads((adapter / "mlops_model.json").read_text())
    assert card["task"] == "summarization" and card["base_model"] == "tiny-random-llama"

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    out = model.predict(pd.DataFrame({"document": ["The Tenant shall pay USD 900 each month.", "Either party may terminate."]}))
    assert list(out.columns) == ["summary"] and len(out) == 2
    assert model.metadata.signature is not None and model.metadata.get_input_schema().input_names() == ["document"]


@pytest.mark.e2e
def test_mlflow_run_sweep_on_the_tiny_llama(tmp_path: Path) -> None:
    out = mlflow_run(tmp_path, "config=tests/configs/tiny-summarizer.yaml", "n_trials=2", "seed=3")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert "baseline_test_rougeL" in parent.data.metrics and "best_eval_rougeL" in parent.data.metrics
    for child in children:
        assert "test_rougeL" in child.data.metrics and child.data.params["decoding"] in ("greedy", "sample")
        assert len(client.get_metric_history(child.info.run_id, "eval_rougeL")) >= 1
        assert "predictions.json" in {a.path for a in client.list_artifacts(child.info.run_id)}
    version = client.get_model_version_by_alias("tiny-summarizer", "staging")
    assert version.run_id in {c.info.run_id for c in children} and version.tags["gate.staging"] == "passed"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("dataset:\n  path: demo:legal\n  document_column: clause\n", "dataset.document_column: column 'clause' not in"),
        ("dataset:\n  path: demo:legal\n  summary_column: abstract\n", "dataset.summary_column: column 'abstract' not in"),
        ("generation:\n  template: 'Summarise this.'\n", "generation.template: must contain the placeholder {document}"),
        ("generation:\n  max_summary_tokens: 2\n", "generation.max_summary_tokens: 2 cuts every reference summary"),
        ("generation:\n  decoding: nucleus\n", "generation.decoding"),
    ],
)
def test_bad_summarization_input_is_one_line_exit_2(tracking: str, tmp_path: Path, override: str, expected: str) -> None:
    import yaml

    data = yaml.safe_load(TINY_SUMMARIZER.read_text())
    for section, values in yaml.safe_load(override).items():
        data[section].update(values)
    data["registry"]["policy"] = str(TESTS / "registry" / "tiny-summarizer.yaml")
    config = write(tmp_path / "bad.yaml", yaml.safe_dump(data))
    out = subprocess.run([sys.executable, "-m", "mlops", "finetune", "--config", str(config)], capture_output=True, text=True)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.count("\n") == 1 and expected in out.stderr, out.stderr
    assert MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()]) == [], "no run may start"
