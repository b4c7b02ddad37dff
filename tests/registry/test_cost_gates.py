"""Gates on serving cost through a real SQLite registry, read back with MlflowClient: a `max:` on a cost metric that
refuses, `no_slower_than` timing champion and challenger side by side in this process, and policy validation that
knows each task's cost metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from mlops.config import load_config
from mlops.errors import ConfigError, GateFailed
from mlops.evaluate import classification_scores
from mlops.registry import AliasPolicy, Gate, PromotionPolicy, load_policy, policy_for, promote_if_gates_pass, register_version
from mlops.tracking import PER_EXAMPLE_ARTIFACT
from tests.helpers import CHAMPION, TINY_CONFIG, isolated_store, scores_with, write


class Delayed(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A served model that takes `delay` seconds per call: one deliberately slower than another."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        time.sleep(self.delay)
        return pd.DataFrame({"label": ["legitimate"] * len(model_input)})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with isolated_store(tmp_path_factory.mktemp("cost-gates")) as uri:
        yield uri


@pytest.fixture
def model(store: str, request: pytest.FixtureRequest) -> str:
    return request.node.name.removeprefix("test_")[:60]


def _version(client: MlflowClient, name: str, metrics: dict[str, float], delay: float | None = None) -> ModelVersion:
    """A version whose run holds per-example test scores (300 examples), `metrics`, and a served model taking
    `delay` seconds per call (or only a placeholder artifact)."""
    mlflow.set_experiment("cost-gates")
    scores = scores_with(CHAMPION)
    with mlflow.start_run() as run:
        mlflow.log_metrics({**classification_scores(scores.predictions, scores.labels, "test"), **metrics})
        mlflow.log_dict(scores.to_document(), PER_EXAMPLE_ARTIFACT)
        if delay is None:
            mlflow.log_dict({"x": 1}, "model/x.json")
            uri = f"runs:/{run.info.run_id}/model"
        else:
            example = pd.DataFrame({"text": ["send me your PIN", "rent paid", "your parcel is held"]})
            uri = mlflow.pyfunc.log_model(name="model", python_model=Delayed(delay), input_example=example).model_uri
    return register_version(client, name, uri, run.info.run_id, {"source_run_id": run.info.run_id})


def _record(client: MlflowClient, version: ModelVersion, alias: str, metric: str) -> dict[str, Any]:
    tags = client.get_model_version(version.name, version.version).tags
    record: dict[str, Any] = json.loads(tags[f"gate.{alias}.{metric}"])
    return record


def _holder(client: MlflowClient, model: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def test_a_latency_gate_refuses_a_slow_version_and_the_alias_stays(model: str) -> None:
    client = MlflowClient()
    gates = [Gate("test_f1", min=0.5), Gate("infer_latency_ms_p95", max=50.0)]
    policy = PromotionPolicy(model, {"staging": AliasPolicy(gates)})
    slow = _version(client, model, {"infer_latency_ms_p95": 80.0})
    with pytest.raises(GateFailed, match=r"infer_latency_ms_p95=80.0000 <= 50.0: FAIL"):
        promote_if_gates_pass(client, policy, slow, "staging")
    assert _holder(client, model, "staging") is None
    record = _record(client, slow, "staging", "infer_latency_ms_p95")
    assert (record["verdict"], record["threshold"], record["value"]) == ("fail", {"max": 50.0}, 80.0)

    fast = _version(client, model, {"infer_latency_ms_p95": 20.0})
    assert promote_if_gates_pass(client, policy, fast, "staging").passed
    assert _holder(client, model, "staging") == str(fast.version)


def test_no_slower_than_refuses_a_challenger_timed_slower_side_by_side(model: str) -> None:
    client = MlflowClient()
    # The logged figures say the challenger is the faster one: the gate must time both, not read them.
    policy = PromotionPolicy(model, {"production": AliasPolicy([Gate("test_f1", min=0.5)], no_slower_than=1.10, timing_repeats=3)})
    champion = _version(client, model, {"infer_latency_ms_p50": 50.0}, delay=0.002)
    promote_if_gates_pass(client, policy, champion, "production")  # no champion yet: nothing to time against

    slower = _version(client, model, {"infer_latency_ms_p50": 1.0}, delay=0.02)
    with pytest.raises(GateFailed, match=rf"no slower than champion v{champion.version} x1.1: .* FAIL"):
        promote_if_gates_pass(client, policy, slower, "production")
    assert _holder(client, model, "production") == str(champion.version)
    record = _record(client, slower, "production", "infer_latency_ms_p50")
    assert record["verdict"] == "fail" and record["champion_version"] == str(champion.version)
    assert record["side_by_side"]["ratio"] > 1.10 and record["side_by_side"]["inputs"] == 3
    assert record["value"] >= 20.0 and record["champion_value"] < record["value"]

    faster = _version(client, model, {"infer_latency_ms_p50": 99.0}, delay=0.0)
    report = promote_if_gates_pass(client, policy, faster, "production")
    assert report.passed and _holder(client, model, "production") == str(faster.version)
    assert _record(client, faster, "production", "infer_latency_ms_p50")["side_by_side"]["ratio"] < 1.10


def test_a_misspelt_cost_metric_is_one_line_naming_the_nearest(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "p.yaml",
        "model_name: m\naliases:\n  staging:\n    gates:\n      - {metric: infer_latency_ms_p59, max: 50}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_policy(str(bad))
    assert info.value.errors == [
        "aliases.staging.gates[0].metric: unknown metric 'infer_latency_ms_p59' (did you mean 'infer_latency_ms_p95'?)"
    ]
    assert len(str(info.value).splitlines()) == 1


def test_cost_gates_and_no_slower_than_are_validated(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "p.yaml",
        "model_name: m\naliases:\n  staging:\n    no_slower_than: 0\n    timing_repeats: 0\n    gates:\n"
        "      - {metric: serving_bytes, max: -1}\n      - {metric: infer_cost_seconds, max: 5}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_policy(str(bad))
    assert sorted(info.value.errors) == [
        "aliases.staging.gates[0].max: -1.0 is outside the range of serving_bytes [0.0, inf]",
        "aliases.staging.gates[1].metric: unknown metric 'infer_cost_seconds' (did you mean 'infer_tokens_per_second'?)",
        "aliases.staging.no_slower_than: a factor in (0, 100] (1.10: at most 10 % slower), got 0.0",
        "aliases.staging.timing_repeats: must be in [1, 1000], got 0",
    ]


def test_a_policy_knows_which_cost_metrics_its_task_logs(tmp_path: Path) -> None:
    policy = write(
        tmp_path / "registry" / "p.yaml",
        "model_name: tiny-detector\naliases:\n  staging:\n    gates:\n      - {metric: infer_latency_ms_p95, max: 50}\n"
        "      - {metric: compression_ratio, max: 0.5}\n",
    )
    config = load_config(str(TINY_CONFIG), {"registry.policy": str(policy)})
    with pytest.raises(ConfigError) as info:
        policy_for(config)
    (error,) = info.value.errors
    assert error.startswith("aliases.staging.gates[1].metric: compression_ratio is never logged by classification; use one of ")
    assert "infer_latency_ms_p95" in error and "compression_ratio" not in error.split("use one of ")[1]
