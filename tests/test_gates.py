"""Gate decisions (pure) and alias moves (through a real SQLite registry, read back with MlflowClient)."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from mlops.errors import GateFailed
from mlops.promotion import AliasPolicy, Gate, PromotionPolicy, decide, promote_if_gates_pass, register_version


def _policy() -> PromotionPolicy:
    return PromotionPolicy(
        model_name="m",
        aliases={
            "staging": AliasPolicy([Gate("test_f1", min=0.8)]),
            "production": AliasPolicy([Gate("test_f1", min=0.9, not_worse_than="production")]),
        },
    )


def test_threshold_pass_and_fail() -> None:
    rules = _policy().aliases["staging"]
    assert decide("staging", rules, {"test_f1": 0.81}, {}).passed
    report = decide("staging", rules, {"test_f1": 0.79}, {})
    assert not report.passed and "test_f1=0.7900 >= 0.8: FAIL" in report.summary()
    assert not decide("staging", rules, {}, {}).passed, "a missing metric must fail the gate"


def test_not_worse_than_current_holder() -> None:
    rules = _policy().aliases["production"]
    assert decide("production", rules, {"test_f1": 0.93}, {"production": None}).passed
    assert decide("production", rules, {"test_f1": 0.93}, {"production": {"test_f1": 0.92}}).passed
    worse = decide("production", rules, {"test_f1": 0.93}, {"production": {"test_f1": 0.95}})
    assert not worse.passed and "not worse than production (0.9500): FAIL" in worse.summary()


def _version_with(client: MlflowClient, f1: float) -> object:
    mlflow.set_experiment("gates")
    with mlflow.start_run() as run:
        mlflow.log_metric("test_f1", f1)
        mlflow.log_dict({"x": 1}, "model/x.json")
    return register_version(client, "m", f"runs:/{run.info.run_id}/model", run.info.run_id, {"source_run_id": run.info.run_id})


def test_alias_moves_only_through_passing_gates(tracking: str) -> None:
    client = MlflowClient()
    policy = _policy()
    good = _version_with(client, 0.95)
    promote_if_gates_pass(client, policy, good, "staging")
    promote_if_gates_pass(client, policy, good, "production")
    assert client.get_model_version_by_alias("m", "production").version == good.version

    worse = _version_with(client, 0.91)
    promote_if_gates_pass(client, policy, worse, "staging")
    with pytest.raises(GateFailed, match="alias 'production' not moved"):
        promote_if_gates_pass(client, policy, worse, "production")
    assert client.get_model_version_by_alias("m", "production").version == good.version
    assert client.get_model_version_by_alias("m", "staging").version == worse.version
    tags = client.get_model_version("m", worse.version).tags
    assert tags["gate.staging"] == "passed" and tags["gate.production"] == "failed"
    assert "not worse than production (0.9500): FAIL" in tags["gate.production.report"]

    bad = _version_with(client, 0.5)
    with pytest.raises(GateFailed):
        promote_if_gates_pass(client, policy, bad, "staging")
    assert client.get_model_version_by_alias("m", "staging").version == worse.version


def test_every_alias_move_is_audited_and_rollback_goes_back(tracking: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops.cli import main
    from mlops.promotion import history

    client = MlflowClient()
    policy = _policy()
    first, second = _version_with(client, 0.95), _version_with(client, 0.97)
    assert main(["rollback", "m", "--alias", "production"]) == 2, "no holder yet: refuse"
    promote_if_gates_pass(client, policy, first, "production")
    assert main(["rollback", "m", "--alias", "production"]) == 2, "no previous holder: refuse"
    assert client.get_model_version_by_alias("m", "production").version == first.version, "a refused rollback moves nothing"
    promote_if_gates_pass(client, policy, second, "production")

    assert main(["rollback", "m", "--alias", "production"]) == 0
    assert client.get_model_version_by_alias("m", "production").version == first.version
    events = history(client, "m", "production")
    v1, v2 = str(first.version), str(second.version)
    assert [(e["action"], e["from_version"], e["to_version"]) for e in events] == [
        ("promote", None, v1),
        ("promote", v1, v2),
        ("rollback", v2, v1),
    ]
    assert all("@" in e["who"] and e["when"].endswith("+00:00") for e in events)
    assert events[1]["source_run_id"] == second.run_id and "test_f1" in events[1]["why"]

    capsys.readouterr()
    assert main(["registry", "history", "m", "--alias", "production"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "rollback" in lines[2] and f"v{second.version} -> v{first.version}" in lines[2]
