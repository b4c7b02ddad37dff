"""The serving cost on every trial of a tiny sweep, read back through MlflowClient (a classifier and a summariser),
and the registered model, loaded as `mlflow models serve` loads it, holding what its trial measured."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.data import load_task_data
from mlops.search import SweepOptions, run_sweep
from mlops.serving import served_size
from mlops.tasks import MODEL_PARAMS_ACTIVE, SERVING_BYTES, spec_for
from tests.helpers import TINY_CONFIG, TINY_SUMMARIZER


def _children(client: MlflowClient, experiment: str, parent: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("mlflow.parentRunId") == parent]


def _check_cost(metrics: dict[str, float], task: str) -> None:
    names = {m.name for m in spec_for(task).cost}
    assert names <= set(metrics), f"missing: {sorted(names - set(metrics))}"
    assert 0 < metrics["infer_latency_ms_p50"] <= metrics["infer_latency_ms_p95"]
    assert metrics["infer_examples_per_second"] > 0 and metrics["infer_peak_memory_gib"] > 0
    assert 0 < metrics["adapter_bytes"] < metrics["serving_bytes"]  # the base is served too
    assert metrics["model_params_active"] > 0 and 0 < metrics["infer_cost_seconds"] < 120


@pytest.mark.slow
def test_every_trial_logs_its_cost_and_the_served_model_holds_what_was_measured(tracking: str) -> None:
    # served merged and int8-quantised: what the registered model loads must be what the trial measured
    overrides = {"search.n_trials": 2, "serving.merge_adapter": True, "serving.precision": "dynamic_int8"}
    config = load_config(str(TINY_CONFIG), overrides)
    result = run_sweep(config, SweepOptions())
    client = MlflowClient()
    children = _children(client, "tiny", result.parent_run_id)
    assert len(children) == 2
    for child in children:
        _check_cost(child.data.metrics, "classification")
        assert not {"generated_tokens_mean", "compression_ratio"} & set(child.data.metrics)
        assert not any(k.startswith("test_infer") for k in child.data.metrics)  # no split prefix

    # The served model: the registered version, loaded as `mlflow models serve` loads it, holds exactly what its
    # trial measured (the same parameters and bytes: the same precision, merge and dropped layers), and predicts.
    # Its speed is not compared here: timings belong to benchmarks/inference_cost.py, not to assertions.
    version = client.get_model_version_by_alias("tiny-detector", "staging")
    measured = client.get_run(version.run_id).data.metrics
    served = mlflow.pyfunc.load_model("models:/tiny-detector@staging")
    held = served_size(served.unwrap_python_model())
    assert held[MODEL_PARAMS_ACTIVE] == measured[MODEL_PARAMS_ACTIVE]
    assert held[SERVING_BYTES] == measured[SERVING_BYTES]
    frame = load_task_data("classification", config.dataset, TINY_CONFIG.parent, config.training.seed).serving_frame("test", 4)
    assert len(served.predict(frame)) == len(frame)


@pytest.mark.slow
def test_a_summariser_sweep_logs_the_generation_cost(tracking: str) -> None:
    config = load_config(str(TINY_SUMMARIZER), {"search.n_trials": 2, "cost.examples": 4})
    result = run_sweep(config, SweepOptions())
    client = MlflowClient()
    children = _children(client, "tiny-summarizer", result.parent_run_id)
    assert len(children) == 2
    for child in children:
        metrics = child.data.metrics
        _check_cost(metrics, "summarization")
        # counted by re-tokenising the served text: a random model's tokens need not round-trip exactly
        assert 0 < metrics["generated_tokens_mean"] <= 2 * config.generation.max_new_tokens
        assert 0 < metrics["compression_ratio"] < 1  # 8 new tokens at most from documents of dozens
        assert metrics["infer_tokens_per_second"] > 0
