"""Continued pre-training: the mix, the run it logs, the model it saves, and runs that start from that model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from mlops.config import ExperimentConfig, load_config
from mlops.errors import ConfigError, DataError
from mlops.models import RunArtifactSource, resolve_source
from mlops.train.pretrain import PRETRAINED_CARD, _prepare, build_mix, run_pretrain
from tests.helpers import TINY_SUMMARIZER, write


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloaded run artifacts go to a per-test cache, never the user's."""
    monkeypatch.setenv("MLOPS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_config(**overrides: Any) -> ExperimentConfig:
    return load_config(str(TINY_SUMMARIZER), {"pretrain.max_steps": 4, "pretrain.block_size": 32, **overrides})


def base_weights() -> dict[str, torch.Tensor]:
    return resolve_source("tiny-random-llama").load_causal_lm().state_dict()


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    assert before.keys() == after.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.slow
def test_lora_pretrain_logs_a_merged_model_that_resolves_as_a_source(tracking: str, cache: Path) -> None:
    result = run_pretrain(tiny_config(**{"pretrain.mode": "lora"}))

    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlops.entry_point"] == "pretrain"
    assert run.data.tags["mlops.pretrained_model_uri"] == result.model_uri == f"runs:/{result.run_id}/pretrained"
    assert run.data.params["mode"] == "lora" and run.data.params["domain_text"] == "demo:legal"
    assert run.data.params["model_source"] == "tiny-random-llama" and run.data.params["lora_r"] == "8"
    metrics = run.data.metrics
    assert metrics["perplexity_before"] == pytest.approx(result.perplexity_before)
    assert metrics["perplexity_after"] == pytest.approx(result.perplexity_after)
    assert metrics["domain_heldout_tokens"] == result.domain_heldout_tokens > 0
    assert 0 < metrics["trainable_params"] < metrics["total_params"]
    assert len(client.get_metric_history(result.run_id, "train_loss")) > 1
    # telemetry: every trained token counted (nothing is evaluated inside pre-training), the process's peak memory
    pt = tiny_config().pretrain
    tokens = metrics["train_tokens_per_second"] * metrics["train_seconds"]
    assert tokens == pytest.approx(pt.max_steps * pt.batch_size * pt.block_size, rel=1e-6)
    assert 0.05 < metrics["peak_memory_gib"] < 64 and metrics["flops_per_token"] > 0 and "mfu" not in metrics  # no peak FLOPs for a CPU
    assert abs(metrics["domain_fraction_used"] - 0.5) <= 0.1
    assert {a.path for a in client.list_artifacts(result.run_id)} >= {"pretrained", "environment.json"}
    saved = {Path(a.path).name for a in client.list_artifacts(result.run_id, "pretrained")}
    assert {"config.json", "model.safetensors", "tokenizer.json", PRETRAINED_CARD} <= saved
    assert "adapter_config.json" not in saved, "LoRA must be merged: the artifact is a plain transformers model"

    source = resolve_source(result.model_uri)
    assert isinstance(source, RunArtifactSource)
    assert source.lineage() == {"mlops.base_model_run_id": result.run_id, "mlops.base_model_uri": result.model_uri}
    card = json.loads((Path(source.path()) / PRETRAINED_CARD).read_text(encoding="utf-8"))
    assert card["base_model"] == "tiny-random-llama" and card["mode"] == "lora" and card["run_id"] == result.run_id
    assert Path(source.path()) == cache / "runs" / result.run_id / "pretrained"

    weights = source.load_causal_lm().state_dict()
    moved = changed(base_weights(), weights)
    assert moved, "training changed no weight"
    assert all(k.rsplit(".", 2)[-2] in ("q_proj", "k_proj", "v_proj", "o_proj") for k in moved), (
        f"LoRA moved more than its targets: {moved}"
    )
    fetched = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="pretrained", dst_path="fetched")
    assert not changed(resolve_source(fetched).load_causal_lm().state_dict(), weights), "the source must load exactly the saved weights"
    text = "The Provider shall indemnify the Client."
    assert source.load_tokenizer()(text)["input_ids"] == resolve_source("tiny-random-llama").load_tokenizer()(text)["input_ids"]


@pytest.mark.slow
def test_full_pretrain_under_mlflow_run_lowers_domain_perplexity(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlflow run` hands over its run through MLFLOW_RUN_ID; the pretrain run must be that run."""
    client = MlflowClient()
    project_run = client.create_run(client.create_experiment("project")).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", project_run)
    config = tiny_config(**{"pretrain.mode": "full", "pretrain.max_steps": 20, "pretrain.learning_rate": 1e-3})

    result = run_pretrain(config)

    assert result.run_id == project_run
    run = client.get_run(project_run)
    assert run.info.status == "FINISHED" and run.info.run_name == "pretrain-tiny-summarizer"
    assert run.data.metrics["perplexity_after"] < run.data.metrics["perplexity_before"]
    assert result.perplexity_after < result.perplexity_before
    assert len(client.get_metric_history(project_run, "train_loss")) == 20
    assert result.n_blocks == 20 * config.pretrain.batch_size
    moved = changed(base_weights(), resolve_source(result.model_uri).load_causal_lm().state_dict())
    assert "model.embed_tokens.weight" in moved and "lm_head.weight" in moved, "full mode trains every weight"


def split_at_eos(tokens: list[int]) -> list[list[int]]:
    passages, current = [], []
    for t in tokens:
        current.append(t)
        if t < 0:
            passages.append(current)
            current = []
    return passages + ([current] if current else [])


def passage_is_whole(passage: list[int]) -> bool:
    """One source's tokens closed by that source's eos: 1..1, -1 or 2..2, -2 (a cut passage is shorter, never mixed)."""
    *body, eos = passage
    return eos < 0 and all(t == -eos for t in body)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9, 1.0])
@pytest.mark.parametrize(("domain_passages", "general_passages"), [(3, 200), (200, 3)])
def test_mix_meets_the_domain_token_fraction(fraction: float, domain_passages: int, general_passages: int) -> None:
    """Token 1 marks domain text, token 2 general text; a scarce source is repeated, an ample one sampled."""
    domain = [[1] * (5 + i % 7) + [-1] for i in range(domain_passages)]  # -1, -2: each source's eos
    general = [[2] * (4 + i % 9) + [-2] for i in range(general_passages)]
    mix = build_mix(domain, general, fraction, n_blocks=16, block_size=32, seed=0)

    tokens = [t for block in mix.blocks for t in block]
    assert len(mix.blocks) == 16 and all(len(b) == 32 for b in mix.blocks)
    domain_share = (tokens.count(1) + tokens.count(-1)) / len(tokens)
    assert abs(domain_share - fraction) <= 0.1
    assert tokens[-1] < 0 and all(passage_is_whole(p) for p in split_at_eos(tokens)), "a passage ran into the next"
    assert mix.domain_fraction == pytest.approx(domain_share)
    assert build_mix(domain, general, fraction, n_blocks=16, block_size=32, seed=0) == mix, "the mix is seeded"


def test_heldout_domain_passages_are_never_trained_on(tmp_path: Path) -> None:
    passages = [f"clause {i:02d} " + "alpha " * (i % 5 + 1) for i in range(40)]
    domain = write(tmp_path / "domain.txt", "\n\n".join(passages))
    config = tiny_config(**{"pretrain.domain_text": str(domain), "pretrain.general_text": "none", "pretrain.domain_fraction": 1.0})
    prepared = _prepare(config)

    heldout = [t for b in prepared.heldout_blocks for t in b]
    trained = [t for b in prepared.mix.blocks for t in b]
    tokenizer = prepared.tokenizer
    heldout_clauses = {p for p in tokenizer.decode(heldout).split(tokenizer.eos_token) if p}
    assert len(heldout_clauses) == 4  # heldout_fraction 0.1 of 40
    assert not any(c in tokenizer.decode(trained) for c in heldout_clauses)


def test_low_domain_fraction_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mlops.pretrain"):
        _prepare(tiny_config(**{"pretrain.domain_fraction": 0.2}))
    assert "below the 30% of domain text the tuning guide recommends" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"pretrain.domain_text": "missing.txt"}, DataError, r"pretrain\.domain_text: file not found: .*missing\.txt"),
        ({"pretrain.domain_text": "demo:nope"}, DataError, r"pretrain\.domain_text: no demo dataset 'nope'"),
        ({"pretrain.domain_text": "notes.docx"}, ConfigError, r"pretrain\.domain_text: cannot read .*notes\.docx"),
        ({"pretrain.domain_text": "table.csv"}, DataError, r"pretrain\.domain_text: column 'text' not in .*table\.csv"),
        ({"pretrain.domain_text": "blank.txt"}, DataError, r"pretrain\.domain_text: no text in .*blank\.txt"),
        ({"pretrain.general_text": "missing.jsonl"}, DataError, r"pretrain\.general_text: file not found"),
        ({"pretrain.general_text": "demo:legal"}, ConfigError, r"pretrain\.general_text: the same text as pretrain\.domain_text"),
        ({"pretrain.general_text": "none"}, ConfigError, r"pretrain\.general_text: none, so the mix is domain text only"),
        ({"pretrain.block_size": 4096}, ConfigError, r"pretrain\.block_size: 4096 exceeds the model's 512 positions"),
    ],
)
def test_bad_input_fails_before_any_run(tracking: str, overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    write(Path("table.csv"), "body,label\nsome words,1\n")
    write(Path("blank.txt"), "\n  \n\n")
    with pytest.raises(error, match=message):
        run_pretrain(tiny_config(**overrides))
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_unknown_run_is_a_model_source_error(tracking: str) -> None:
    from mlops.errors import ModelSourceError

    with pytest.raises(ModelSourceError, match=r"model.source: cannot download 'runs:/0123456789abcdef/pretrained'"):
        resolve_source("runs:/0123456789abcdef/pretrained").load_tokenizer()
    with pytest.raises(ModelSourceError, match=r"model.source: 'runs:/abc' is not a run artifact URI"):
        resolve_source("runs:/abc")


@pytest.mark.slow
def test_finetune_starts_from_the_pretrained_model(tracking: str) -> None:
    from mlops.train.finetune import run_finetune

    pretrained = run_pretrain(tiny_config(**{"pretrain.max_steps": 2}))
    config = load_config(str(TINY_SUMMARIZER), {"model.source": pretrained.model_uri})

    run_id = run_finetune(config)

    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["model_source"] == pretrained.model_uri
    assert run.data.tags["mlops.base_model_run_id"] == pretrained.run_id, "the fine-tune points back to its pre-training run"
    card = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="adapter/mlops_model.json", dst_path="card")
    assert json.loads(Path(card).read_text(encoding="utf-8"))["base_model"] == pretrained.model_uri
