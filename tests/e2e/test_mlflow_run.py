"""`mlflow run` end to end: the project run is the sweep's parent (children under it, alias set) or the finetune run."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.helpers import mlflow_run

pytestmark = pytest.mark.e2e


def test_mlflow_run_sweep_end_to_end(tmp_path: Path) -> None:
    out = mlflow_run(tmp_path, "config=tests/configs/tiny.yaml", "n_trials=3", "sampler=random", "seed=7")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("e2e")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, "the project run must be the only parent"
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags.get("mlflow.project.entryPoint") == "sweep"
    assert parent.data.params["seed"] == "7" and parent.data.params["n_trials"] == "3"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3
    for child in children:
        assert child.data.params["seed"] == "7"
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) > 1
        assert "environment.json" in {a.path for a in client.list_artifacts(child.info.run_id)}
    assert "baseline_test_f1" in parent.data.metrics and "best_trial_number" in parent.data.metrics
    assert parent.data.params["storage_effective"].startswith(f"sqlite:///{tmp_path}")
    version = client.get_model_version_by_alias("tiny-detector", "staging")
    assert version.tags["gate.staging"] == "passed"
    assert version.tags["sweep_run_id"] == parent.info.run_id
    assert version.run_id in {c.info.run_id for c in children}


def test_mlflow_run_finetune_takes_over_the_project_run(tmp_path: Path) -> None:
    out = mlflow_run(tmp_path, "config=tests/configs/tiny.yaml", "learning_rate=2e-4", entry_point="finetune")
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    assert len(runs) == 1, "finetune logs into the project run, no extra run"
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.params["learning_rate"] == "2e-4"
    assert run.data.params["lora_r_effective"] == "8" and run.data.params["seed_effective"] == "42"
    assert "test_f1" in run.data.metrics and len(client.get_metric_history(run.info.run_id, "train_loss")) > 1
    assert {"adapter", "environment.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
