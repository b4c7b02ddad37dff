"""A person in the loop: a policy's `approval: required` holds a passing version until `mlops approve` moves the alias,
read back through MlflowClient from a real SQLite registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from mlops.cli import main
from mlops.errors import ConfigError, GateFailed
from mlops.evaluate import PerExampleScores, classification_scores
from mlops.registry import AliasPolicy, Gate, PromotionPolicy, history, load_policy, pending, promote_if_gates_pass, register_version
from mlops.tracking import PER_EXAMPLE_ARTIFACT
from tests.helpers import isolated_store, write


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with isolated_store(tmp_path_factory.mktemp("approval")) as uri:
        yield uri


@pytest.fixture
def model(store: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered-model name of this test's own; the OS user is `alice` (a local store has no tracking auth)."""
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    return request.node.name.removeprefix("test_")[:60]


def _policy(model: str) -> PromotionPolicy:
    return PromotionPolicy(model, {"production": AliasPolicy([Gate("test_f1", min=0.9)], approval="required")}, after_sweep="production")


def _version(client: MlflowClient, model: str, right: float) -> ModelVersion:
    """A version scored on 100 test examples, a fraction `right` of them predicted right."""
    labels = [i % 2 for i in range(100)]
    predictions = [y if i < right * 100 else 1 - y for i, y in enumerate(labels)]
    scores = PerExampleScores("classification", "d0", [f"id{i}" for i in range(100)], labels, predictions, ["legit", "fraud"])
    mlflow.set_experiment("approval")
    with mlflow.start_run() as run:
        mlflow.log_metrics(classification_scores(predictions, labels, "test"))
        mlflow.log_dict(scores.to_document(), PER_EXAMPLE_ARTIFACT)
        mlflow.log_dict({"x": 1}, "model/x.json")
    return register_version(client, model, f"runs:/{run.info.run_id}/model", run.info.run_id, {})


def test_a_passing_version_waits_and_approve_moves_the_alias_recording_who(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    client = MlflowClient()
    version = _version(client, model, 0.95)
    report = promote_if_gates_pass(client, _policy(model), version, "production")
    assert report.passed and report.awaiting_approval
    assert client.get_registered_model(model).aliases == {}  # nothing moved yet
    assert client.get_model_version(model, version.version).tags["mlops.approval.production"] == "awaiting"
    assert [(e["action"], e["to_version"]) for e in history(client, model)] == [("awaiting", "1")]
    assert [(w["model"], w["version"], w["alias"]) for w in pending(client, model)] == [(model, "1", "production")]

    assert main(["approve", "--list", "--model", model]) == 0
    assert f"{model} v1 -> production" in capsys.readouterr().out
    assert main(["approve", "--model", model, "--version", "1", "--note", "reviewed the eval report"]) == 0
    out = capsys.readouterr().out
    assert "now holds 'production'" in out and f"#/models/{model}/versions/1?workflowType=machine_learning" in out

    assert str(client.get_model_version_by_alias(model, "production").version) == "1"
    tags = client.get_model_version(model, "1").tags
    record = json.loads(tags["mlops.approval.production.record"])
    assert tags["mlops.approval.production"] == "approved"
    assert record["approved_by"] == "alice" and record["note"] == "reviewed the eval report" and record["approved_at"]
    moves = history(client, model)
    assert [e["action"] for e in moves] == ["awaiting", "approve"]
    assert moves[-1]["why"].startswith("approved by alice: reviewed the eval report")
    assert pending(client, model) == []


def test_approving_twice_or_a_failed_version_is_refused_in_one_line(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    client = MlflowClient()
    good = _version(client, model, 0.95)
    promote_if_gates_pass(client, _policy(model), good, "production")
    assert main(["approve", "--model", model, "--version", str(good.version), "--alias", "production"]) == 0
    capsys.readouterr()
    assert main(["approve", "--model", model, "--version", str(good.version)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already approved by alice" in err and len(err.splitlines()) == 1

    weak = _version(client, model, 0.5)
    with pytest.raises(GateFailed):
        promote_if_gates_pass(client, _policy(model), weak, "production")
    assert main(["approve", "--model", model, "--version", str(weak.version)]) == 2
    err = capsys.readouterr().err.strip()
    assert "awaits no approval" in err and len(err.splitlines()) == 1
    assert str(client.get_model_version_by_alias(model, "production").version) == str(good.version)  # the alias stayed


def test_a_thresholds_only_approval_does_not_depend_on_the_holder(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    client = MlflowClient()
    first, second = _version(client, model, 0.95), _version(client, model, 0.96)
    promote_if_gates_pass(client, _policy(model), first, "production")
    promote_if_gates_pass(client, _policy(model), second, "production")
    assert main(["approve", "--model", model, "--version", str(second.version)]) == 0
    capsys.readouterr()
    # decided against nobody, but `second` holds production now: thresholds alone do not depend on the holder,
    # so the first may still be approved; a policy comparing with the champion would have to decide again.
    assert main(["approve", "--model", model, "--version", str(first.version)]) == 0
    assert str(client.get_model_version_by_alias(model, "production").version) == str(first.version)


def test_policy_files_name_approval_and_reject_other_values(tmp_path: Path) -> None:
    text = "model_name: m\nafter_sweep: production\naliases:\n  production:\n    approval: {value}\n"
    text += "    gates:\n      - metric: test_f1\n        min: 0.9\n"
    policy = load_policy(str(write(tmp_path / "ok.yaml", text.format(value="required"))))
    assert policy.for_alias("production").approval == "required"
    with pytest.raises(ConfigError, match="approval"):
        load_policy(str(write(tmp_path / "bad.yaml", text.format(value="maybe"))))
