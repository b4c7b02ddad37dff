"""A Chinese summarisation sweep end to end on a tiny LLaMA: character ROUGE on every run, the resolved tokenizer
logged on the parent and each trial, the lead baseline split at 。, and the staging gate, read back through MlflowClient."""

from __future__ import annotations

from mlflow import MlflowClient

from mlops.config import load_config
from mlops.search import SweepOptions, run_sweep
from tests.helpers import TESTS

TINY_SUMMARIZER_ZH = TESTS / "configs" / "tiny-summarizer-zh.yaml"


def test_chinese_summarization_sweep_scores_characters_and_gates(tracking: str) -> None:
    result = run_sweep(load_config(str(TINY_SUMMARIZER_ZH)), SweepOptions())
    client = MlflowClient()
    parent = client.get_run(result.parent_run_id)
    runs = client.search_runs([parent.info.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert parent.data.params["text_tokenizer"] == "char"
    assert 0.1 < parent.data.metrics["baseline_test_rougeL"] < 0.6  # the preamble, not the whole clause
    for child in children:
        assert child.info.status == "FINISHED" and child.data.params["text_tokenizer"] == "char"
        for name in ("eval_rougeL", "test_rougeL", "test_rouge1", "test_key_term_recall"):
            assert 0.0 <= child.data.metrics[name] <= 1.0, name
        assert len(client.get_metric_history(child.info.run_id, "train_loss")) > 1
    version = client.get_model_version_by_alias("tiny-summarizer-zh", "staging")
    assert version.run_id == result.best_run_id and version.tags["gate.staging"] == "passed"
