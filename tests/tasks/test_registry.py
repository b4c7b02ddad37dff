"""Tasks are specs in one registry: every reference a spec makes resolves, callers never compare task names, and
a task registered from one module is known to the config, the metric tables and policy validation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mlops.config import LOGGED_METRICS, SEARCH_METRICS, load_config
from mlops.errors import ConfigError
from mlops.evaluate import CLASSIFICATION_METRICS
from mlops.registry import METRICS, Gate, policy_for
from mlops.tasks import TaskSpec, bounded, loss, register, resolve, spec_for, task_names, unregister
from mlops.tasks.summarization import SPEC as SUMMARIZATION
from mlops.train.tasks import Task, task_for
from tests.helpers import ROOT, TINY_CONFIG, write

TASK_NAME_COMPARISON = re.compile(r"task\"?\]? *(==|!=) *['\"]|task in \(")


def test_callers_never_compare_task_names() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "mlops").rglob("*.py"))
        if path.parent.name != "tasks" or path.parent.parent.name != "mlops"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TASK_NAME_COMPARISON.search(line)
    ]
    assert not found, found


@pytest.mark.parametrize("name", ["classification", "summarization", "instruction"])
def test_every_reference_of_a_spec_resolves(name: str) -> None:
    spec = spec_for(name)
    assert callable(resolve(spec.loader)) and callable(resolve(spec.baseline))
    assert isinstance(task_for(name), resolve(spec.trainer)) and isinstance(task_for(name), Task)
    assert task_for(name).name == name
    code = ROOT / "mlops" / "serving" / spec.serving.code_file
    assert f"import {spec.serving.model_class}" in code.read_text(encoding="utf-8")


def test_the_metric_tables_are_the_ones_of_earlier_releases() -> None:
    assert SEARCH_METRICS["classification"] == ("eval_f1", "eval_precision", "eval_recall", "eval_loss")
    assert LOGGED_METRICS["summarization"] == (
        *("eval_rougeL", "eval_rouge1", "eval_rouge2", "eval_key_term_recall", "eval_loss"),
        *("test_rougeL", "test_rouge1", "test_rouge2", "test_key_term_recall"),
        *(m.name for m in spec_for("summarization").cost),  # then the serving cost, new in this release
    )
    resampled = {m for m, s in METRICS.items() if s.per_example}
    assert resampled == {
        "test_f1",
        "test_precision",
        "test_recall",
        "test_rougeL",
        "test_key_term_recall",
        "test_token_f1",
        "test_exact_match",
    }
    assert METRICS["eval_rouge2"].baseline == "baseline_validation_rouge2" and METRICS["test_loss"].baseline is None
    assert not METRICS["eval_loss"].higher_is_better
    assert {f"test_{m.name}" for m in CLASSIFICATION_METRICS} <= set(spec_for("classification").metric_names("test"))


@pytest.fixture
def toy() -> Iterator[TaskSpec]:
    """Another task, declared as its spec and registered with one line, as `mlops/tasks/<name>.py` would."""
    spec = replace(
        SUMMARIZATION,
        name="toy",
        validation=(bounded("eval", "toy_match"), bounded("eval", "toy_f1"), bounded("eval", "rougeL"), loss("eval")),
        test=(bounded("test", "toy_match", per_example=True), bounded("test", "toy_f1"), bounded("test", "rougeL", per_example=True)),
    )
    register(spec)
    yield spec
    unregister(spec.name)


def test_a_registered_task_is_known_to_the_config_the_metrics_and_the_policies(toy: TaskSpec, tmp_path: Path) -> None:
    assert "toy" in task_names()
    assert SEARCH_METRICS["toy"] == ("eval_toy_match", "eval_toy_f1", "eval_rougeL", "eval_loss")
    assert METRICS["test_toy_match"].per_example and "eval_toy_f1" in METRICS
    assert Gate("test_toy_match", min=0.5, on="lower_bound").check("g") == []

    data = yaml.safe_load(TINY_CONFIG.read_text())
    data |= {"task": "toy", "search": {**data.get("search", {}), "metric": "eval_toy_match"}}
    gates = "model_name: m\naliases:\n  staging:\n    gates:\n      - {metric: %s, min: 0.5}\n"
    policy = write(tmp_path / "toy-policy.yaml", gates % "test_toy_match")
    data["registry"] = {"model_name": "m", "policy": str(policy)}
    config = load_config(str(write(tmp_path / "c.yaml", yaml.safe_dump(data))))
    assert config.spec is toy and policy_for(config).model_name == "m"

    write(policy, gates % "test_f1")
    with pytest.raises(ConfigError, match="test_f1 is never logged by toy; use one of eval_toy_match"):
        policy_for(config)


def test_a_task_unregistered_is_unknown_again(toy: TaskSpec) -> None:
    unregister(toy.name)
    assert "toy" not in SEARCH_METRICS and "test_toy_match" not in METRICS
    with pytest.raises(ConfigError, match=r"^task: unknown task 'toys' \("):
        spec_for("toys")
