"""The serving cost of a trained adapter (`mlops.train.cost`), read back through MlflowClient: what head pruning
takes off the served model, and `cost.examples: 0`, which measures nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.data import load_task_data
from mlops.train.cost import measure_cost
from mlops.train.finetune import run_finetune
from tests.helpers import TINY_CONFIG


def test_no_examples_measure_nothing_and_load_nothing() -> None:
    config = load_config(str(TINY_CONFIG), {"cost.examples": 0})
    data = load_task_data(config.task, config.dataset, TINY_CONFIG.parent, config.training.seed)
    assert measure_cost(config, data, Path("/no/such/adapter")) == {}  # a load would fail on the missing adapter


@pytest.mark.slow
def test_pruned_heads_leave_fewer_active_parameters_in_the_served_model(tracking: str) -> None:
    client = MlflowClient()
    costs = {}
    for prune in (0, 1):
        config = load_config(str(TINY_CONFIG), {"training.prune_heads": prune, "cost.examples": 4})
        costs[prune] = client.get_run(run_finetune(config)).data.metrics
    full, pruned = costs[0], costs[1]
    assert pruned["model_params_active"] < full["model_params_active"]
    assert pruned["serving_bytes"] < full["serving_bytes"]
    assert full["adapter_bytes"] > 0 and pruned["adapter_bytes"] > 0
