"""Alias moves through a real SQLite registry, read back with MlflowClient: champion vs challenger, failing gates,
the legacy-stage opt-in, the audit trail and rollback, and two processes promoting to one alias at the same moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from mlops.errors import ConfigError, GateFailed, SplitMismatch
from mlops.evaluate import PerExampleScores, classification_scores
from mlops.registry import (
    AliasMove,
    AliasPolicy,
    Compare,
    Gate,
    PromotionPolicy,
    history,
    move_alias,
    promote_if_gates_pass,
    register_version,
)
from mlops.registry.ledger import _Ledger
from mlops.tracking import PER_EXAMPLE_ARTIFACT
from tests.helpers import CHAMPION, CLEARLY_BETTER, MARGINALLY_BETTER, isolated_store, policy_for, scores_with, write


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite tracking store for the module (a new one costs seconds of migrations); each test uses its own model."""
    with isolated_store(tmp_path_factory.mktemp("registry")) as uri:
        yield uri


@pytest.fixture
def model(store: str, request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own."""
    return request.node.name.removeprefix("test_")[:60]


def _version(client: MlflowClient, scores: PerExampleScores | None, name: str) -> ModelVersion:
    mlflow.set_experiment("gates")
    with mlflow.start_run() as run:
        if scores is not None:
            mlflow.log_metrics(classification_scores(scores.predictions, scores.labels, "test"))
            mlflow.log_dict(scores.to_document(), PER_EXAMPLE_ARTIFACT)
        else:
            mlflow.log_metric("test_f1", 0.95)
        mlflow.log_dict({"x": 1}, "model/x.json")
    return register_version(client, name, f"runs:/{run.info.run_id}/model", run.info.run_id, {"source_run_id": run.info.run_id})


def _gate_record(client: MlflowClient, version: ModelVersion, alias: str, metric: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(client.get_model_version(version.name, version.version).tags[f"gate.{alias}.{metric}"])
    return record


def _holder(client: MlflowClient, model: str, alias: str = "production") -> object:
    return client.get_model_version_by_alias(model, alias).version


def test_challenger_takes_production_only_when_the_interval_excludes_zero(model: str) -> None:
    client = MlflowClient()
    policy = policy_for(model, Compare(rule="superiority", n_bootstrap=1000))
    champion = _version(client, scores_with(CHAMPION), model)
    first = promote_if_gates_pass(client, policy, champion, "production")
    assert first.decided_by == "thresholds alone: no champion holds 'production'"
    assert _gate_record(client, champion, "production", "test_f1")["champion_version"] is None

    marginal = _version(client, scores_with(MARGINALLY_BETTER), model)
    with pytest.raises(GateFailed, match="alias 'production' not moved"):
        promote_if_gates_pass(client, policy, marginal, "production")
    assert _holder(client, model) == champion.version
    record = _gate_record(client, marginal, "production", "test_f1")
    low, high = record["ci"]
    assert record["verdict"] == "fail" and record["champion_version"] == str(champion.version)
    assert record["delta"] > 0 and low < 0 < high and record["threshold"] == {"min": 0.6}
    assert record["rule"].startswith(f"superiority over champion v{champion.version} (95% paired bootstrap, 1000 resamples")

    clear = _version(client, scores_with(CLEARLY_BETTER), model)
    report = promote_if_gates_pass(client, policy, clear, "production")
    assert report.passed and _holder(client, model) == clear.version
    record = _gate_record(client, clear, "production", "test_f1")
    assert record["verdict"] == "pass" and record["ci"][0] > 0 and record["champion_value"] < record["value"]
    tags = client.get_model_version(model, clear.version).tags
    assert tags["gate.production"] == "passed" and "superiority over champion" in tags["gate.production.report"]


def test_non_inferiority_lets_the_same_challenger_through(model: str) -> None:
    client = MlflowClient()
    policy = policy_for(model, Compare(rule="non_inferiority", margin=0.05, n_bootstrap=1000))
    champion, marginal = _version(client, scores_with(CHAMPION), model), _version(client, scores_with(MARGINALLY_BETTER), model)
    promote_if_gates_pass(client, policy, champion, "production")
    report = promote_if_gates_pass(client, policy, marginal, "production")
    assert report.decided_by.startswith("non_inferiority over champion")
    assert _holder(client, model) == marginal.version


def test_champion_scored_on_another_split_is_a_named_error(model: str) -> None:
    client = MlflowClient()
    policy = policy_for(model, Compare(n_bootstrap=200))
    champion = _version(client, scores_with(CHAMPION, digest="split-a"), model)
    promote_if_gates_pass(client, policy, champion, "production")
    other = _version(client, scores_with(CLEARLY_BETTER, digest="split-b"), model)
    with pytest.raises(SplitMismatch, match="test splits differ .*split-b vs split-a"):
        promote_if_gates_pass(client, policy, other, "production")
    assert _holder(client, model) == champion.version
    tags = client.get_model_version(model, other.version).tags
    assert tags["gate.production"] == "failed" and "not decided" in tags["gate.production.report"]

    unscored = _version(client, None, model)
    with pytest.raises(GateFailed, match=f"no {PER_EXAMPLE_ARTIFACT} on the run of v{unscored.version}"):
        promote_if_gates_pass(client, policy, unscored, "production")


def test_failing_gate_moves_nothing_and_tags_the_reasons(model: str) -> None:
    client = MlflowClient()
    weak = _version(client, scores_with(set(range(100))), model)  # 33 % right
    with pytest.raises(GateFailed, match="staging gate failed"):
        promote_if_gates_pass(client, policy_for(model), weak, "staging")
    assert client.get_registered_model(model).aliases == {}
    tags = client.get_model_version(model, weak.version).tags
    assert tags["gate.staging"] == "failed" and ">= 0.5: FAIL" in tags["gate.staging.report"]
    assert _gate_record(client, weak, "staging", "test_f1")["verdict"] == "fail"
    assert history(client, model) == []


def test_legacy_stage_only_when_asked(model: str) -> None:
    client = MlflowClient()
    policy = policy_for(model)
    plain, legacy = _version(client, scores_with(CHAMPION), model), _version(client, scores_with(CHAMPION), model)
    promote_if_gates_pass(client, policy, plain, "staging")
    assert client.get_model_version(model, plain.version).current_stage == "None", "aliases only by default"
    promote_if_gates_pass(client, policy, legacy, "staging", legacy_stage=True)
    assert client.get_model_version(model, legacy.version).current_stage == "Staging"
    plain_move, legacy_move = history(client, model, "staging")
    assert "legacy_stage" not in plain_move and legacy_move["legacy_stage"] == "Staging", "the stage moves in the recorded step"
    assert legacy_move["to_version"] == str(legacy.version)
    with pytest.raises(ConfigError, match="has no legacy stage"):
        PromotionPolicy(model, {"canary": AliasPolicy([Gate("test_f1", min=0.5)])}).legacy_stage("canary")


def test_every_alias_move_is_audited_and_rollback_goes_back(model: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops.cli import main

    client = MlflowClient()
    policy = policy_for(model)
    first, second = _version(client, scores_with(CHAMPION), model), _version(client, scores_with(CLEARLY_BETTER), model)
    assert main(["rollback", model, "--alias", "production"]) == 2, "no holder yet: refuse"
    promote_if_gates_pass(client, policy, first, "production")
    assert main(["rollback", model, "--alias", "production"]) == 2, "no previous holder: refuse"
    assert _holder(client, model) == first.version, "a refused rollback moves nothing"
    promote_if_gates_pass(client, policy, second, "production")

    assert main(["rollback", model, "--alias", "production"]) == 0
    assert _holder(client, model) == first.version
    events = history(client, model, "production")
    v1, v2 = str(first.version), str(second.version)
    assert [(e["seq"], e["action"], e["from_version"], e["to_version"]) for e in events] == [
        (1, "promote", None, v1),
        (2, "promote", v1, v2),
        (3, "rollback", v2, v1),
    ]
    assert all("@" in e["who"] and e["when"].endswith("+00:00") for e in events)
    assert events[1]["source_run_id"] == second.run_id and "test_f1" in events[1]["why"]

    capsys.readouterr()
    assert main(["registry", "history", model, "--alias", "production"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "rollback" in lines[2] and f"v{second.version} -> v{first.version}" in lines[2]


def test_a_move_decided_against_a_stale_champion_is_decided_again(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlops.registry.promotion as aliases

    client = MlflowClient()
    policy = policy_for(model, Compare(rule="non_inferiority", margin=0.05, n_bootstrap=200))
    first, intruder, challenger = (_version(client, scores_with(s), model) for s in (CHAMPION, CHAMPION, CLEARLY_BETTER))
    promote_if_gates_pass(client, policy, first, "production")
    real_move, calls = aliases.move_alias, []

    def another_process_moves_first(client: MlflowClient, move: AliasMove) -> dict[str, Any]:
        calls.append(move.expect_from)
        if len(calls) == 1:  # between this decision (against v1) and its move, another process promotes the intruder
            real_move(client, AliasMove(model, "production", str(intruder.version), "promote", "elsewhere"))
        return real_move(client, move)

    monkeypatch.setattr(aliases, "move_alias", another_process_moves_first)
    promote_if_gates_pass(client, policy, challenger, "production")
    assert calls == [str(first.version), str(intruder.version)], "refused against the stale holder, then decided again"
    assert _gate_record(client, challenger, "production", "test_f1")["champion_version"] == str(intruder.version)
    events = history(client, model, "production")
    assert [(e["from_version"], e["to_version"]) for e in events][1:] == [
        (str(first.version), str(intruder.version)),
        (str(intruder.version), str(challenger.version)),
    ]


def test_a_ticket_whose_holder_died_is_passed_over(model: str, caplog: pytest.LogCaptureFixture) -> None:
    from mlops.registry.ledger import _Ledger

    client = MlflowClient()
    version = _version(client, scores_with(CHAMPION), model)
    ledger = _Ledger(client, model)
    ledger.claim(ledger.key(1), json.dumps({"nonce": "dead", "who": "gone@nowhere"}))  # took a place in the queue, then died
    with caplog.at_level("WARNING", logger="mlops.registry.ledger"):
        event = move_alias(client, AliasMove(model, "production", str(version.version), "promote", "test"), wait_s=0.5)
    assert "was never served; revoked" in caplog.text
    assert event["ticket"] == ledger.key(2) and _holder(client, model) == version.version
    queue = ledger.queue()
    assert queue.start[1].startswith("revoked by") and queue.done[1] == "revoked" and queue.done[2] == queue.start[2]


# Each process loads everything first, says it is ready, then waits for the same start time (a file) and promotes.
_PROMOTER = """
import pathlib, sys, time
from mlflow import MlflowClient
from mlops.registry import load_policy, promote_if_gates_pass

policy_file, version, barrier = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
client = MlflowClient()
policy = load_policy(policy_file)
candidate = client.get_model_version("racer", version)
(barrier / f"ready-{version}").touch()
while not (barrier / "go").exists():
    time.sleep(0.005)
start = float((barrier / "go").read_text())
while time.time() < start:
    pass
promote_if_gates_pass(client, policy, candidate, "production")
"""

_POLICY = """model_name: racer
aliases:
  staging:
    gates: [{metric: test_f1, min: 0.5}]
  production:
    gates: [{metric: test_f1, min: 0.5}]
"""


@pytest.mark.slow
def test_concurrent_promotions_serialise_through_the_ledger(store: str, tmp_path: Path) -> None:
    """Two processes promote two versions to one alias at the same moment: one final holder, both moves audited in
    order with distinct sequence numbers, the second moving from the first's version."""
    client = MlflowClient()
    mlflow.set_experiment("race")
    for f1 in (0.8, 0.9):
        with mlflow.start_run() as run:
            mlflow.log_metric("test_f1", f1)
            mlflow.log_dict(scores_with(CHAMPION).to_document(), PER_EXAMPLE_ARTIFACT)  # the evidence every gate asks for
        register_version(client, "racer", f"runs:/{run.info.run_id}/model", run.info.run_id, {})
    policy = write(tmp_path / "racer.yaml", _POLICY)
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROMOTER, str(policy), version, str(barrier)], env=os.environ, stderr=subprocess.PIPE, text=True
        )
        for version in ("1", "2")
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((barrier / f"ready-{v}").exists() for v in ("1", "2")):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a promoter did not get ready"
            time.sleep(0.05)
        (barrier / "go").write_text(str(time.time() + 0.5))
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], errors

    events = history(client, "racer", "production")
    assert [e["seq"] for e in events] == [1, 2], "distinct sequence numbers, in order"
    assert sorted(e["to_version"] for e in events) == ["1", "2"], "both moves are recorded"
    assert events[0]["from_version"] is None and events[1]["from_version"] == events[0]["to_version"]
    assert str(client.get_model_version_by_alias("racer", "production").version) == events[1]["to_version"], "one final holder"
    queue = _Ledger(client, "racer").queue()
    assert sorted(queue.tickets) == [1, 2] and queue.start == queue.done, "each ticket served once, in turn"
    assert [e["ticket"] for e in events] == [_Ledger(client, "racer").key(t) for t in sorted(queue.tickets)]
