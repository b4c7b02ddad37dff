"""A registered model serves, evaluates, traces back and reproduces: one tiny sweep registers a version for the
whole module, then lineage tags, pyfunc loading, a live `mlflow models serve`, `mlops evaluate` through the registry,
`mlops reproduce`, `mlops export --merge`; plus the adapter-only size check against MiniLM's weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from mlops.cli import main
from tests.helpers import TINY_CONFIG, invoke, isolated_store, served

MODEL = "tiny-detector"
TEXTS = ["Your transfer of $20 to Anna was completed", "URGENT: verify your account now or it will be suspended"]

pytestmark = pytest.mark.slow  # one sweep registers the version every test here reads; one test serves it over HTTP


@dataclass
class Registered:
    uri: str  # tracking URI
    version: ModelVersion
    folder: Path


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    """One tiny sweep (1 trial) in a module-wide SQLite store: its best trial registered and holding `staging`."""
    folder = tmp_path_factory.mktemp("serve")
    with isolated_store(folder) as uri:
        assert main(["sweep", "--config", str(TINY_CONFIG), "--n-trials", "1"]) == 0
        yield Registered(uri, MlflowClient().get_model_version_by_alias(MODEL, "staging"), folder)


def test_version_carries_its_lineage(registered: Registered) -> None:
    client = MlflowClient()
    tags = registered.version.tags
    trial = client.get_run(registered.version.run_id)
    assert tags["lineage.trial_run_id"] == trial.info.run_id and tags["lineage.sweep_run_id"] == trial.data.tags["mlflow.parentRunId"]
    assert tags["lineage.seed"] == trial.data.params["seed"] == "42"
    digests = {t.value: i.dataset.digest for i in trial.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"}
    for split in ("train", "validation", "test"):
        assert json.loads(tags[f"lineage.dataset.{split}"])["digest"] == digests[split]
    environment = mlflow.artifacts.load_dict(tags["lineage.environment"])
    assert tags["lineage.git_commit"].split()[0] == environment["git"]["commit"] and len(environment["git"]["commit"]) == 40
    resolved = mlflow.artifacts.load_dict(tags["lineage.resolved_config"])
    assert resolved["config"]["training"]["lora_r"] == int(trial.data.params["lora_r"])
    assert resolved["config"]["training"]["learning_rate"] == float(trial.data.params["learning_rate"])


def test_pyfunc_predicts_labels_with_probabilities(registered: Registered) -> None:
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@staging")
    out = model.predict(pd.DataFrame({"text": TEXTS}))
    labels = [c.removeprefix("p_") for c in out.columns if c.startswith("p_")]
    assert list(out.columns) == ["label", "probability", *[f"p_{name}" for name in labels]] and len(labels) == 2
    assert len(out) == 2 and set(out["label"]) <= set(labels)
    probabilities = out[[f"p_{name}" for name in labels]]
    assert ((probabilities.sum(axis=1) - 1).abs() < 1e-5).all()
    assert (out["probability"] == probabilities.max(axis=1)).all()


def test_mlflow_models_serve_answers_invocations(registered: Registered) -> None:
    with served(f"models:/{MODEL}@staging") as url:
        status, answer = invoke(url, {"dataframe_split": {"columns": ["text"], "data": [[t] for t in TEXTS]}})
    assert status == 200, answer
    served_rows = answer["predictions"]
    local = mlflow.pyfunc.load_model(f"models:/{MODEL}@staging").predict(pd.DataFrame({"text": TEXTS}))
    assert [row["label"] for row in served_rows] == local["label"].tolist()
    assert [row["probability"] for row in served_rows] == pytest.approx(local["probability"].tolist(), abs=1e-6)


def test_evaluate_through_the_registry_matches_the_training_run(registered: Registered) -> None:
    client = MlflowClient()
    trained_f1 = client.get_run(registered.version.run_id).data.metrics["test_f1"]
    assert main(["evaluate", "--config", str(TINY_CONFIG)]) == 0
    exp = client.get_experiment_by_name("tiny")
    evaluation = client.search_runs([exp.experiment_id], filter_string="tags.`mlops.entry_point` = 'evaluate'")[0]
    assert evaluation.info.status == "FINISHED"
    assert evaluation.data.tags["model_uri"] == f"models:/{MODEL}@staging"
    assert evaluation.data.metrics["test_f1"] == pytest.approx(trained_f1, abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(evaluation.info.run_id)}
    assert {"confusion_matrix.json", "per_example"} <= artifacts
    evaluated = mlflow.artifacts.load_dict(f"runs:/{evaluation.info.run_id}/per_example/test.json")
    trained = mlflow.artifacts.load_dict(f"runs:/{registered.version.run_id}/per_example/test.json")
    assert evaluated == trained, "the served model predicts every test example as the trained one did"


def test_evaluate_unknown_model_is_a_clear_error(registered: Registered, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--config", str(TINY_CONFIG), "--model-uri", "models:/nope@staging"]) == 2
    assert "model-uri: cannot load models:/nope@staging" in capsys.readouterr().err


def test_reproduce_gives_a_zero_delta(registered: Registered, capsys: pytest.CaptureFixture[str]) -> None:
    client = MlflowClient()
    capsys.readouterr()
    assert main(["reproduce", f"models:/{MODEL}/{registered.version.version}"]) == 0
    out = capsys.readouterr().out
    original = client.get_run(registered.version.run_id)
    runs = client.search_runs([original.info.experiment_id], f"tags.`mlops.reproduction_of` = '{original.info.run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    again = runs[0].data.metrics
    for metric in ("test_f1", "test_loss", "eval_f1", "eval_loss", "train_loss"):
        assert again[metric] == original.data.metrics[metric], metric
    assert again["reproduction_max_abs_delta"] == 0.0
    assert "test_f1" in out and "largest absolute delta: 0" in out
    deltas = mlflow.artifacts.load_dict(f"runs:/{runs[0].info.run_id}/reproduction.json")
    assert deltas and all(d["delta"] == 0 for d in deltas.values())
    assert "flops_per_token" in deltas and "peak_memory_gib" not in deltas, "what the machine measured is not compared"


def test_export_merged_weights_give_the_adapter_logits(registered: Registered, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mlops.models import resolve_source

    out = tmp_path / "merged"
    assert main(["export", f"models:/{MODEL}@staging", "--out", str(out), "--merge"]) == 0
    assert not list(out.glob("adapter_*")), "merged: a plain transformers model, no adapter files"
    adapter = tmp_path / "adapter"
    assert main(["export", f"models:/{MODEL}@staging", "--out", str(adapter)]) == 0
    card = json.loads((adapter / "mlops_model.json").read_text())

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    base = resolve_source(card["base_model"]).load_classifier(len(card["label_names"]))
    with torch.no_grad():
        adapter_logits = PeftModel.from_pretrained(base, str(adapter)).eval()(**batch).logits
        merged_logits = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()(**batch).logits
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=0, atol=1e-5)
    assert main(["export", f"models:/{MODEL}@staging", "--out", str(out)]) == 2, "an existing directory is never overwritten"


def test_logged_model_is_adapter_only(registered: Registered, tmp_path: Path) -> None:
    """The logged model holds the adapter, the tokenizer and a reference to the base, never the base weights: with
    LoRA r=8 on MiniLM's query/value projections it is under 2 % of the base's weight bytes (90.9 MB); with the
    shipped fraud config (every linear layer adapted and the pooler trained) it stays under 3 %."""
    from dataclasses import replace

    from mlops.config import load_config
    from mlops.models import resolve_source
    from mlops.serving import log_adapter_model
    from mlops.train.loop import save_adapter
    from mlops.train.tasks import build_classifier

    config = load_config("fraud-detection")
    source = resolve_source(config.model.source)
    base_bytes = sum(p.numel() * p.element_size() for p in source.load_classifier(2).parameters())
    mlflow.set_experiment("size")
    shares = {}
    for name, targets, heads, limit in (("query/value", ["query", "value"], [], 0.02), ("shipped", None, None, 0.03)):
        model, _ = build_classifier(
            source, 2, replace(config.training, lora_r=8), replace(config.model, target_modules=targets, head_modules=heads)
        )
        adapter = tmp_path / name.replace("/", "-")
        save_adapter(model, source.load_tokenizer(), adapter, config, {"label_names": ["legit", "fraud"], "max_length": 64})
        with mlflow.start_run():
            info = log_adapter_model(adapter)
        logged = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(adapter.with_suffix(".logged"))))
        shares[name] = sum(f.stat().st_size for f in logged.rglob("*") if f.is_file()) / base_bytes
        assert shares[name] <= limit, (name, shares[name])
    assert base_bytes > 80e6 and shares["query/value"] < shares["shipped"], shares
