"""Gates that demand evidence, through a real SQLite registry read back with MlflowClient: too few scored test
examples, a model that loses to its sweep's baseline, a threshold judged on the bootstrap interval's lower end; and
the validation of the new policy keys."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from mlops.errors import ConfigError, GateFailed
from mlops.evaluate import PerExampleScores, classification_scores
from mlops.registry import load_policy, promote_if_gates_pass, register_version
from mlops.tracking import PER_EXAMPLE_ARTIFACT
from tests.helpers import isolated_store, write


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with isolated_store(tmp_path_factory.mktemp("evidence")) as uri:
        yield uri


def _summaries(rouge: list[float], terms: list[float]) -> PerExampleScores:
    ids = [f"c{i}" for i in range(len(rouge))]
    return PerExampleScores("summarization", "d0", ids, values={"test_rougeL": rouge, "test_key_term_recall": terms})


def _classifications(n: int, correct: int) -> PerExampleScores:
    labels = [i % 2 for i in range(n)]
    predictions = [y if i < correct else 1 - y for i, y in enumerate(labels)]
    return PerExampleScores("classification", "d0", [f"t{i}" for i in range(n)], labels, predictions, ["legitimate", "fraud"])


def _sweep_version(name: str, scores: PerExampleScores, baselines: dict[str, float]) -> ModelVersion:
    """A sweep parent that logged `baselines`, one trial under it with `scores`, registered as a version of `name`."""
    mlflow.set_experiment("evidence")
    with mlflow.start_run() as parent:
        mlflow.log_metrics(baselines)
        with mlflow.start_run(nested=True) as trial:
            if scores.task == "classification":
                mlflow.log_metrics(classification_scores(scores.predictions, scores.labels, "test"))
            else:
                mlflow.log_metrics({k: sum(v) / len(v) for k, v in scores.values.items()})
            mlflow.log_dict(scores.to_document(), PER_EXAMPLE_ARTIFACT)
    tags = {"source_run_id": trial.info.run_id, "sweep_run_id": parent.info.run_id}
    return register_version(MlflowClient(), name, f"runs:/{trial.info.run_id}/model", trial.info.run_id, tags)


def _record(version: ModelVersion, alias: str, metric: str) -> dict[str, Any]:
    tags = MlflowClient().get_model_version(version.name, version.version).tags
    record: dict[str, Any] = json.loads(tags[f"gate.{alias}.{metric}"])
    return record


def test_a_summariser_that_loses_to_its_baseline_is_refused_staging(store: str) -> None:
    policy = load_policy("legal-summarizer")
    weak = _sweep_version("legal-summarizer", _summaries([0.40] * 40, [0.9] * 40), {"baseline_test_rougeL": 0.50})
    with pytest.raises(GateFailed, match=r"beat the baseline \(baseline_test_rougeL 0.5000\): FAIL.*alias 'staging' not moved"):
        promote_if_gates_pass(MlflowClient(), policy, weak, "staging")
    assert MlflowClient().get_registered_model("legal-summarizer").aliases == {}
    record = _record(weak, "staging", "test_rougeL")
    assert record["verdict"] == "fail" and record["baseline"] == 0.5 and record["value"] == pytest.approx(0.40)

    strong = _sweep_version("legal-summarizer", _summaries([0.60] * 40, [0.9] * 40), {"baseline_test_rougeL": 0.50})
    report = promote_if_gates_pass(MlflowClient(), policy, strong, "staging")
    assert report.passed and MlflowClient().get_registered_model("legal-summarizer").aliases == {"staging": strong.version}


def test_too_few_scored_examples_fail_every_gate(store: str) -> None:
    policy = load_policy("legal-summarizer")
    few = _sweep_version("legal-summarizer-few", _summaries([0.9] * 10, [0.9] * 10), {"baseline_test_rougeL": 0.2})
    policy.model_name = few.name
    with pytest.raises(GateFailed, match=r"insufficient evidence: 10 examples \(needs 30\)"):
        promote_if_gates_pass(MlflowClient(), policy, few, "staging")
    for metric in ("test_rougeL", "test_key_term_recall"):
        record = _record(few, "staging", metric)
        assert record["verdict"] == "fail" and any("insufficient evidence: 10 examples" in c for c in record["checks"])
    assert MlflowClient().get_registered_model(few.name).aliases == {}


def test_no_baseline_logged_fails_the_baseline_gate(store: str) -> None:
    policy = load_policy("legal-summarizer")
    orphan = _sweep_version("legal-summarizer-orphan", _summaries([0.9] * 40, [0.9] * 40), {"unrelated": 1.0})
    policy.model_name = orphan.name
    with pytest.raises(GateFailed, match=r"beat the baseline: no baseline_test_rougeL logged by the sweep"):
        promote_if_gates_pass(MlflowClient(), policy, orphan, "staging")


def test_production_judges_the_lower_end_of_the_interval(store: str, tmp_path: Any) -> None:
    """F1 0.92 on 120 examples is above 0.90, but its 95 % interval reaches well below: production refuses it; the same
    accuracy on 2,000 examples narrows the interval above 0.90 and passes."""
    policy = load_policy("fraud-detector")
    name = "fraud-detector"
    shaky = _sweep_version(name, _classifications(120, 110), {"baseline_test_f1": 0.80})
    with pytest.raises(GateFailed, match=r"lower bound of the 95% interval \[0\.\d+, 0\.\d+\] >= 0.9: FAIL"):
        promote_if_gates_pass(MlflowClient(), policy, shaky, "production")
    record = _record(shaky, "production", "test_f1")
    low, high = record["interval"]
    assert record["judged"] == "lower_bound" and record["value"] > 0.9 and low < 0.9 < high
    assert record["verdict"] == "fail" and MlflowClient().get_registered_model(name).aliases == {}

    sure = _sweep_version(name, _classifications(2000, 1900), {"baseline_test_f1": 0.80})
    report = promote_if_gates_pass(MlflowClient(), policy, sure, "production")
    low, _ = _record(sure, "production", "test_f1")["interval"]
    assert report.passed and low >= 0.9 and math.isclose(report.outcomes[0].value or 0, 0.95, abs_tol=1e-9)
    assert MlflowClient().get_registered_model(name).aliases == {"production": sure.version}


def test_policy_validation_reports_every_new_key_error_at_once(tmp_path: Any) -> None:
    bad = write(
        tmp_path / "p.yaml",
        """model_name: m
aliases:
  staging:
    min_examples: 0
    gates:
      - {metric: test_loss, max: 1.0, beat_baseline: true}
      - {metric: eval_f1, min: 0.5, on: lower_bound}
      - {metric: test_f1, min: 0.5, on: upper_end}
      - {metric: test_f1, min: 0.5, min_examples: -3, beat_baselines: true}
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_policy(str(bad))
    errors = caught.value.errors
    expected = [
        "aliases.staging.min_examples: must be >= 1, got 0",
        "aliases.staging.gates[0].beat_baseline: test_loss has no baseline to beat",
        "aliases.staging.gates[1].on: lower_bound needs per-example scores to resample, which eval_f1 lacks",
        "aliases.staging.gates[2].on: must be one of 'value', 'lower_bound', got 'upper_end'",
        "aliases.staging.gates[3].min_examples: must be >= 1, got -3",
        "aliases.staging.gates[3].beat_baselines: unknown key (did you mean 'beat_baseline'?)",
    ]
    for message in expected:
        assert any(e.startswith(message) for e in errors), (message, errors)
