"""The registered model is the trained one: `evaluate` through the registry reproduces the trial's test F1."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from mlops.cli import main

from .conftest import TINY_CONFIG


def test_evaluate_registered_model_matches_training_run(tracking: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--config", str(TINY_CONFIG), "--n-trials", "1"]) == 0
    client = MlflowClient()
    version = client.get_model_version_by_alias("tiny-detector", "staging")
    trained_f1 = client.get_run(version.run_id).data.metrics["test_f1"]

    assert main(["evaluate", "--config", str(TINY_CONFIG)]) == 0
    exp = client.get_experiment_by_name("tiny")
    evaluation = client.search_runs([exp.experiment_id], filter_string="tags.`mlops.entry_point` = 'evaluate'")[0]
    assert evaluation.info.status == "FINISHED"
    assert evaluation.data.tags["model_uri"] == "models:/tiny-detector@staging"
    assert evaluation.data.metrics["test_f1"] == pytest.approx(trained_f1, abs=1e-6)
    assert "confusion_matrix.json" in {a.path for a in client.list_artifacts(evaluation.info.run_id)}


def test_evaluate_unknown_model_is_a_clear_error(tracking: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--config", str(TINY_CONFIG), "--model-uri", "models:/nope@staging"]) == 2
    assert "model-uri: cannot load models:/nope@staging" in capsys.readouterr().err
