"""Structural options: frozen bottom layers, gradient-based head pruning, bottleneck adapters and FFN gates that
reload exactly, prefix tuning, LR schedules, gradient accumulation, searchable structure keys, refusals."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from mlflow import MlflowClient

from mlops.cli import main
from mlops.config import ExperimentConfig, load_config
from mlops.data import Split
from mlops.models import resolve_source
from mlops.models.structure import head_importance
from mlops.train.finetune import Prepared, prepare
from mlops.train.loop import run_trainer, save_adapter
from mlops.train.structure import calibration_batch
from mlops.train.tasks import TrainingSets, build_classifier
from mlops.train.tasks.classification import _Encoded
from tests.helpers import TESTS, TINY_CONFIG, TINY_SUMMARIZER, write


@pytest.fixture(scope="module")
def tiny() -> tuple[ExperimentConfig, Prepared]:
    config = load_config(str(TINY_CONFIG))
    return config, prepare(config)


def _rows(prepared: Prepared, split: str, n: int) -> _Encoded:
    data: Any = prepared.data
    part = data.split(split)
    return _Encoded(Split(part.texts[:n], part.labels[:n], part.source), prepared.tokenizer, 32)


def _train(model: Any, hp: Any, prepared: Prepared, n_train: int = 64) -> tuple[Any, str]:
    """Train `model` on the first `n_train` examples under a new MLflow run; return the trainer and the run id."""
    from transformers import DataCollatorWithPadding

    model.config.pad_token_id = prepared.tokenizer.pad_token_id
    train, validation = _rows(prepared, "train", n_train), _rows(prepared, "validation", 16)
    mlflow.set_experiment("structure")
    sets = TrainingSets(train, validation, DataCollatorWithPadding(prepared.tokenizer))
    with mlflow.start_run() as run, run_trainer(model, hp, sets, None, "eval_f1") as (trainer, _, _):
        return trainer, run.info.run_id


def _batch(prepared: Prepared, n: int = 16) -> dict[str, torch.Tensor]:
    data: Any = prepared.data
    return calibration_batch(prepared.tokenizer, data.train.texts, data.train.labels, 32, n)


def test_freeze_ratio_leaves_bottom_layers_unchanged(tracking: str, tiny: tuple[ExperimentConfig, Prepared]) -> None:
    config, prepared = tiny
    hp = replace(config.training, freeze_ratio=0.5, ffn_gate=True, max_steps=6, learning_rate=1e-2)
    model, report = build_classifier(prepared.source, 2, hp, config.model)
    assert report.frozen_layers == 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert not [n for n, p in model.named_parameters() if p.requires_grad and "layer.0." in n]
    _train(model, hp, prepared)
    after = model.state_dict()
    bottom = [k for k in after if "encoder.layer.0." in k]
    top_trainable = [n for n, p in model.named_parameters() if p.requires_grad and "encoder.layer.1." in n]
    assert bottom and all(torch.equal(after[k], before[k]) for k in bottom), "a frozen layer changed"
    assert {"lora_B", "ffn_adapter.gate"} <= {m for n in top_trainable for m in ("lora_B", "ffn_adapter.gate") if m in n}
    changed = [n for n in top_trainable if not torch.equal(after[n], before[n])]
    assert any("lora_B" in n for n in changed) and any("ffn_adapter.gate" in n for n in changed)


def test_head_importance_is_the_loss_gradient_and_the_least_important_head_goes(tiny: tuple[ExperimentConfig, Prepared]) -> None:
    config, prepared = tiny
    batch = _batch(prepared)
    base = prepared.source.load_classifier(2).double()
    importance = head_importance(base, batch)
    assert importance.shape == (2, 2)

    # Independent check: scaling a head's value rows by (1 + eps) scales its output by (1 + eps); central difference.
    def loss(layer: int, head: int, scale: float) -> float:
        value = base.bert.encoder.layer[layer].attention.self.value
        rows = slice(head * 16, (head + 1) * 16)
        saved = value.weight.data[rows].clone(), value.bias.data[rows].clone()
        value.weight.data[rows] *= scale
        value.bias.data[rows] *= scale
        base.eval()
        with torch.no_grad():
            result = float(base(**batch).loss)
        value.weight.data[rows], value.bias.data[rows] = saved
        return result

    eps = 1e-4
    for layer in range(2):
        for head in range(2):
            numeric = abs(loss(layer, head, 1 + eps) - loss(layer, head, 1 - eps)) / (2 * eps)
            assert float(importance[layer, head]) == pytest.approx(numeric, rel=1e-3, abs=1e-9)

    hp = replace(config.training, prune_heads=1)
    model, report = build_classifier(prepared.source, 2, hp, config.model, batch)
    weakest = divmod(int(torch.argmin(importance.float())), 2)
    assert report.pruning is not None and report.pruning.pruned_heads == {weakest[0]: [weakest[1]]}
    pruned_base: Any = model.get_base_model()
    assert pruned_base.config.pruned_heads == {weakest[0]: [weakest[1]]}
    attention = pruned_base.bert.encoder.layer[weakest[0]].attention
    assert attention.self.query.base_layer.weight.shape == (16, 32) and attention.output.dense.base_layer.weight.shape == (32, 16)
    other = pruned_base.bert.encoder.layer[1 - weakest[0]].attention
    assert other.self.query.base_layer.weight.shape == (32, 32)
    assert model(**batch).logits.shape == (16, 2)
    metrics = report.metrics()
    head_params = 3 * (16 * 32 + 16) + 16 * 32  # one 16-wide head's rows of query/key/value (with bias), columns of the output
    assert metrics["heads_pruned"] == 1 and metrics["params_before_pruning"] - metrics["params_after_pruning"] == head_params
    assert {"calibration_forward_ms_before_pruning", "calibration_forward_ms_after_pruning"} <= set(metrics)
    assert report.documents()["pruned_heads.json"]["pruned_heads"] == {str(weakest[0]): [weakest[1]]}


def test_bottleneck_gate_and_pruned_heads_reload_exactly_through_serving(tracking: str, tiny: tuple[ExperimentConfig, Prepared]) -> None:
    from mlops.serving.pyfunc import AdapterClassifier

    config, prepared = tiny
    hp = replace(config.training, adapter="bottleneck", reduction_factor=4, ffn_gate=True, prune_heads=1, max_steps=6, learning_rate=1e-2)
    model, _ = build_classifier(prepared.source, 2, hp, config.model, _batch(prepared))
    _train(model, hp, prepared)
    up = model.bert.encoder.layer[1].output.ffn_adapter.up.weight
    assert not torch.equal(up, torch.zeros_like(up)), "the zero-initialised up-projection did not train"
    out = Path("adapter")
    save_adapter(model, prepared.tokenizer, out, config, {"label_names": ["legit", "fraud"], "max_length": 32})
    assert not (out / "adapter_config.json").exists() and (out / "mlops_structure.safetensors").is_file()

    served = AdapterClassifier()
    served.load_context(SimpleNamespace(artifacts={"adapter": str(out)}))
    batch = {k: v for k, v in _batch(prepared, 8).items() if k != "labels"}
    model.eval()
    with torch.no_grad():
        assert torch.equal(served.model(**batch).logits, model(**batch).logits)
        fresh = prepared.source.load_classifier(2).eval()
        assert not torch.allclose(fresh(**batch).logits, model(**batch).logits), "the reload must not be a plain base model"


def test_lora_with_gate_and_pruning_reloads_through_a_logged_model(tracking: str, tiny: tuple[ExperimentConfig, Prepared]) -> None:
    from mlops.serving import log_adapter_model

    config, prepared = tiny
    hp = replace(config.training, ffn_gate=True, prune_heads=1, freeze_ratio=0.5, max_steps=4, learning_rate=1e-2)
    model, _ = build_classifier(prepared.source, 2, hp, config.model, _batch(prepared))
    _train(model, hp, prepared)
    out = Path("adapter")
    save_adapter(model, prepared.tokenizer, out, config, {"label_names": ["legit", "fraud"], "max_length": 32})
    card = json.loads((out / "mlops_model.json").read_text())
    assert card["structure"]["peft"] and card["structure"]["ffn_gate"] and len(card["structure"]["pruned_heads"]) == 1
    mlflow.set_experiment("structure")
    with mlflow.start_run():
        info = log_adapter_model(out)
    served = mlflow.pyfunc.load_model(info.model_uri)
    texts = ["Your transfer of $20 to Anna was completed", "URGENT: verify your account now or it will be locked"]
    probabilities = served.predict(pd.DataFrame({"text": texts}))[["p_legit", "p_fraud"]].to_numpy()
    model.eval()
    with torch.no_grad():
        enc = prepared.tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
        expected = torch.softmax(model(**enc).logits, dim=-1).numpy()
    assert (probabilities == expected).all()


@pytest.mark.slow
def test_prefix_tuning_trains_and_its_served_model_generates_with_the_prefix(tracking: str) -> None:
    from peft import PeftModelForCausalLM
    from safetensors.torch import load_file

    from mlops.tracking import seed_everything
    from mlops.train.finetune import run_finetune
    from mlops.train.tasks import build_causal_lm

    config = load_config(str(TINY_SUMMARIZER), {"training.adapter": "prefix", "training.num_virtual_tokens": 4, "training.max_steps": 3})
    seed_everything(config.training.seed)  # as finetune does: the same initial prompt
    initial, _ = build_causal_lm(resolve_source("tiny-random-llama"), config.training, None)
    start = initial.prompt_encoder["default"].embedding.weight.detach().clone()

    run_id = run_finetune(config)
    adapter = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="adapter"))
    trained = load_file(str(adapter / "adapter_model.safetensors"))["prompt_embeddings"]
    assert trained.shape == start.shape and not torch.equal(trained, start), "the prefix did not train"

    served: Any = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").unwrap_python_model().model
    assert isinstance(served, PeftModelForCausalLM)
    prompt = torch.tensor([[5, 60, 61, 62, 63]])
    with torch.no_grad():
        scores = served.generate(input_ids=prompt, max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True)
        with_prefix = served(input_ids=prompt).logits[:, -1]
        with served.disable_adapter():
            without = served(input_ids=prompt).logits[:, -1]
    assert torch.allclose(scores.scores[0], with_prefix, atol=1e-5), "generate ignored the prefix"
    assert not torch.allclose(with_prefix, without, atol=1e-3)


def test_cosine_with_restarts_brings_the_learning_rate_back_up(tracking: str, tiny: tuple[ExperimentConfig, Prepared]) -> None:
    config, prepared = tiny
    hp = replace(config.training, lr_scheduler="cosine_with_restarts", num_cycles=2, warmup_ratio=0.0, max_steps=8, logging_steps=1)
    model, _ = build_classifier(prepared.source, 2, hp, config.model)
    trainer, run_id = _train(model, hp, prepared)
    assert trainer.args.lr_scheduler_kwargs == {"num_cycles": 2}
    curve = [m.value for m in sorted(MlflowClient().get_metric_history(run_id, "learning_rate"), key=lambda m: m.step)]
    assert len(curve) == 8
    rises = [i for i in range(1, len(curve)) if curve[i] > curve[i - 1]]
    assert rises and curve[rises[0] - 1] < 0.2 * curve[0] and curve[rises[0]] > 0.9 * curve[0], curve


def test_gradient_accumulation_and_checkpointing_reach_the_trainer(tracking: str, tiny: tuple[ExperimentConfig, Prepared]) -> None:
    config, prepared = tiny
    hp = replace(config.training, batch_size=8, epochs=1, max_steps=None, gradient_accumulation_steps=4, gradient_checkpointing=True)
    model, _ = build_classifier(prepared.source, 2, hp, config.model)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    trainer, _ = _train(model, hp, prepared, n_train=70)
    assert trainer.state.global_step == math.ceil(math.ceil(70 / 8) / 4) == 3
    assert trainer.args.activation_checkpointing and model.get_base_model().is_activation_checkpointing
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)


@pytest.mark.slow
def test_structure_keys_are_searchable(tracking: str) -> None:
    from mlops.search import SweepOptions, run_sweep

    overrides = {
        "search.n_trials": 2,
        "search.sampler": "grid",
        "search.space": {
            "adapter": {"type": "categorical", "choices": ["lora", "bottleneck"]},
            "freeze_ratio": {"type": "float", "low": 0.0, "high": 0.5, "values": [0.5]},
        },
        "training.max_steps": 2,
    }
    config = load_config(str(TINY_CONFIG), overrides)
    result = run_sweep(config, SweepOptions(promote=False))
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert sorted(c.data.params["adapter"] for c in children) == ["bottleneck", "lora"]
    for child in children:
        assert child.info.status == "FINISHED" and child.data.params["freeze_ratio"] == "0.5"
        assert child.data.metrics["frozen_layers"] == 1
    trainable = {c.data.params["adapter"]: c.data.metrics["trainable_params"] for c in children}
    assert trainable["lora"] != trainable["bottleneck"]

    applied = config.with_params({"adapter": "bottleneck", "ffn_gate": True, "prune_heads": 2, "lr_scheduler": "cosine"}).training
    assert (applied.adapter, applied.ffn_gate, applied.prune_heads, applied.lr_scheduler) == ("bottleneck", True, 2, "cosine")


def test_preflight_names_the_architecture_before_any_run(tiny: tuple[ExperimentConfig, Prepared]) -> None:
    from mlops.errors import ConfigError
    from mlops.train.structure import preflight

    config, prepared = tiny
    preflight(replace(config, training=replace(config.training, prune_heads=1, ffn_gate=True)), prepared.source)  # BERT: fine
    llama = replace(config, training=replace(config.training, prune_heads=1))
    with pytest.raises(ConfigError, match="training.prune_heads: head pruning is not supported for LlamaForSequenceClassification"):
        preflight(llama, resolve_source("tiny-random-llama"))


def _summarizer_config(tmp_path: Path, training: dict[str, Any], structure: dict[str, Any] | None = None) -> Path:
    data = yaml.safe_load(TINY_SUMMARIZER.read_text())
    data["registry"]["policy"] = str(TESTS / "registry" / "tiny-summarizer.yaml")
    data["training"].update(training)
    data["pipeline"] = {"structure_space": structure or {}}
    return write(tmp_path / "config.yaml", yaml.safe_dump(data))


def _classifier_config(tmp_path: Path, model: dict[str, Any], training: dict[str, Any]) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["registry"]["policy"] = str(TESTS / "registry" / "tiny-detector.yaml")
    data["model"].update(model)
    data["training"].update(training)
    return write(tmp_path / "config.yaml", yaml.safe_dump(data))


BAD = {
    "prune_heads_on_a_causal_lm": (
        lambda t: _summarizer_config(t, {"prune_heads": 1}),
        "finetune",
        r"training.prune_heads: head pruning is not supported for the causal LM that summarization trains",
    ),
    "prune_heads_on_a_llama_classifier": (
        lambda t: _classifier_config(t, {"source": "tiny-random-llama"}, {"prune_heads": 1}),
        "finetune",
        r"training.prune_heads: head pruning is not supported for LlamaForSequenceClassification",
    ),
    "prefix_with_a_lora_structure_search": (
        lambda t: _summarizer_config(t, {"adapter": "prefix"}, structure={"lora_r": {"type": "categorical", "choices": [4, 8]}}),
        "main",
        r"pipeline.structure_space.lora_r: a LoRA setting, but training.adapter is prefix",
    ),
    "prefix_with_gradient_checkpointing": (
        lambda t: _summarizer_config(t, {"adapter": "prefix", "gradient_checkpointing": True}),
        "finetune",
        r"training.gradient_checkpointing: fails with adapter prefix",
    ),
    "prefix_on_a_classifier": (
        lambda t: _classifier_config(t, {}, {"adapter": "prefix"}),
        "sweep",
        r"training.adapter: PEFT refuses prefix tuning for sequence classifiers",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_refused_structure_is_one_line_exit_2(case: str, tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, command, pattern = BAD[case]
    assert main([command, "--config", str(make(tmp_path))]) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if " INFO mlflow." not in line]  # MLflow's own logging
    assert len(lines) == 1 and re.search(pattern, lines[0]), lines
    client = MlflowClient()
    for exp in client.search_experiments():
        assert not client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")


def test_merge_export_refuses_structure_plain_weights_cannot_hold(tmp_path: Path) -> None:
    from mlops.errors import ConfigError
    from mlops.models import MODEL_CARD
    from mlops.registry import merge_adapter

    card = {"task": "classification", "base_model": "tiny-random-bert", "label_names": ["a", "b"]}
    card["structure"] = {"peft": True, "pruned_heads": {"0": [1]}, "ffn_adapters": ["bert.encoder.layer.1.output"]}
    (tmp_path / MODEL_CARD).write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="merge: this model has pruned attention heads and FFN bottleneck adapters or gates"):
        merge_adapter(tmp_path)


def test_dropping_top_layers_keeps_the_config_and_its_per_layer_lists_in_step() -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mlops.errors import ConfigError
    from mlops.models.structure import drop_top_layers

    config = Qwen2Config(
        vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=2
    )
    model = Qwen2ForCausalLM(config).eval()
    bottom = model.model.layers[0]
    assert drop_top_layers(model, 2) == 1
    assert list(model.model.layers) == [bottom] and model.config.num_hidden_layers == 1
    assert model.config.layer_types == ["full_attention"], "per-layer settings follow the kept layers"
    assert model.generate(input_ids=torch.tensor([[5, 6, 7]]), max_new_tokens=3, do_sample=False).shape == (1, 6)
    with pytest.raises(ConfigError, match=r"^training.drop_layers: 1 of the 1 layers of Qwen2ForCausalLM; at least one must stay"):
        drop_top_layers(model, 1)
