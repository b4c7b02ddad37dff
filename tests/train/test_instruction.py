"""The instruction task end to end on a tiny LLaMA: a sweep on each data shape (prompt/response pairs, multi-turn
conversations), child runs read back, registration through a gate, and the served model answering both payloads."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlops.config import load_config
from mlops.search import SweepOptions, run_sweep

POLICY = """model_name: tiny-instructor
aliases:
  staging:
    min_examples: 5
    gates:
      - {metric: test_token_f1, min: 0.0}
  production:
    candidate_from: staging
    gates:
      - {metric: test_exact_match, min: 1.0}
"""


def _rows(shape: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(60):
        question, answer = f"What is the fee in clause {i}?", f"USD {100 + 7 * i}"
        if shape == "pairs":
            rows.append({"question": question, "answer": answer})
        else:
            rows.append(
                {
                    "chat": [
                        {"role": "system", "content": "Answer briefly."},
                        {"role": "user", "content": f"Read clause {i}."},
                        {"role": "assistant", "content": "Done."},
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
    return rows


def _config(tmp_path: Path, shape: str) -> Path:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(shape)), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    columns = {"prompt_column": "question", "response_column": "answer"} if shape == "pairs" else {"messages_column": "chat"}
    config = {
        "name": f"tiny-instruction-{shape}",
        "task": "instruction",
        "experiment_name": f"instruction-{shape}",
        "dataset": {"path": str(data), "min_split_examples": 5, **columns},
        "model": {"source": "tiny-random-llama"},
        "training": {"learning_rate": 1.0e-3, "batch_size": 8, "epochs": 1, "max_steps": 3, "logging_steps": 1},
        "generation": {"max_document_tokens": 64, "max_summary_tokens": 16, "max_new_tokens": 6, "eval_subset": 4, "eval_examples": 6},
        "search": {
            "n_trials": 2,
            "sampler": "random",
            "metric": "eval_token_f1",
            "space": {"learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True}},
        },
        "registry": {"model_name": "tiny-instructor", "policy": str(policy)},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["pairs", "conversations"])
def test_sweep_trains_logs_registers_and_serves(tracking: str, tmp_path: Path, shape: str) -> None:
    result = run_sweep(load_config(str(_config(tmp_path, shape))), SweepOptions())
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    for name in ("baseline_test_exact_match", "baseline_test_token_f1", "baseline_test_rougeL", "baseline_test_frequent_token_f1"):
        assert 0.0 <= parent.data.metrics[name] <= 1.0, name
    runs = client.search_runs([parent.info.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        metrics = child.data.metrics
        for name in ("eval_exact_match", "eval_token_f1", "eval_rougeL", "test_exact_match", "test_token_f1", "test_rougeL"):
            assert 0.0 <= metrics[name] <= 1.0, name
        assert len(client.get_metric_history(child.info.run_id, "eval_token_f1")) >= 1
        assert metrics["train_examples"] > 0 and "train_responses_truncated" in metrics and "rows_dropped_empty_response" in metrics
        per_example = mlflow.artifacts.load_dict(f"runs:/{child.info.run_id}/per_example/test.json")
        assert per_example["task"] == "instruction" and set(per_example["values"]) == {"test_exact_match", "test_token_f1", "test_rougeL"}
        assert len(per_example["values"]["test_token_f1"]) == 6

    version = client.get_model_version_by_alias("tiny-instructor", "staging")
    assert version.run_id == result.best_run_id and version.tags["gate.staging"] == "passed"

    model = mlflow.pyfunc.load_model("models:/tiny-instructor@staging")
    out = model.predict(pd.DataFrame({"prompt": ["What is the fee in clause 3?", "Who pays?"]}))
    assert list(out.columns) == ["response"] and len(out) == 2 and all(isinstance(r, str) for r in out["response"])
    instructor = model.unwrap_python_model()
    turns = [
        [{"role": "user", "content": "Read clause 2."}, {"role": "assistant", "content": "Done."}, {"role": "user", "content": "Fee?"}]
    ]
    answered = instructor.predict(None, pd.DataFrame({"messages": turns}))
    assert list(answered.columns) == ["response"] and len(answered) == 1
    with pytest.raises(MlflowException, match="messages, row 0, turn 0: unknown role"):
        instructor.predict(None, pd.DataFrame({"messages": [[{"role": "robot", "content": "hi"}]]}))
    with pytest.raises(MlflowException, match="expected a 'messages' or a 'prompt' column"):
        instructor.predict(None, pd.DataFrame({"text": ["hi"]}))


@pytest.mark.slow
def test_qlora_seeds_confirmation_reproduce_and_export(tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the other tasks have works here too: a 4-bit base, two seeds per trial, the best trial confirmed with a
    fresh seed, the registered version reproduced with a zero delta and exported as an adapter."""
    from mlops.cli import main

    overrides = {"model.quantization": "nf4", "search.seeds_per_trial": 2, "search.confirm_top_k": 1}
    result = run_sweep(load_config(str(_config(tmp_path, "pairs")), overrides), SweepOptions())
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    runs = client.search_runs([parent.info.experiment_id])

    def children(run_id: str) -> list:  # type: ignore[type-arg]
        return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id]

    trials = [r for r in children(parent.info.run_id) if r.info.run_name.startswith("trial-")]
    confirmations = [r for r in children(parent.info.run_id) if "mlops.confirmation_of" in r.data.tags]
    assert len(trials) == 2 and len(confirmations) == 1
    for trial in trials:
        seeds = children(trial.info.run_id)
        assert len(seeds) == 2 and all(s.data.params["quantization"] == "nf4" for s in seeds)
        assert trial.data.metrics["eval_token_f1"] == pytest.approx(sum(s.data.metrics["eval_token_f1"] for s in seeds) / 2)
    assert parent.data.metrics["confirmed_best_eval_token_f1"] == confirmations[0].data.metrics["eval_token_f1"]

    version = client.get_model_version_by_alias("tiny-instructor", "staging")
    capsys.readouterr()
    assert main(["reproduce", f"models:/tiny-instructor/{version.version}"]) == 0
    reproduction = client.search_runs([parent.info.experiment_id], f"tags.`mlops.reproduction_of` = '{version.run_id}'")
    assert len(reproduction) == 1 and reproduction[0].data.metrics["reproduction_max_abs_delta"] == 0.0
    assert "largest absolute delta: 0" in capsys.readouterr().out

    out = tmp_path / "exported"
    assert main(["export", "models:/tiny-instructor@staging", "--out", str(out)]) == 0
    card = json.loads((out / "mlops_model.json").read_text())
    assert card["task"] == "instruction" and card["quantization"] == "nf4" and (out / "adapter_model.safetensors").exists()
