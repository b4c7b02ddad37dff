"""QLoRA (4-bit bases through bitsandbytes), the LoRA variants, and DeepSeek-V3 (MLA + MoE) as summarisers, on tiny
models built in code: trained, logged adapter-only, registered, gated and served."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from safetensors.torch import load_file

from mlops.cli import main
from mlops.config import ModelConfig, TrainingConfig, load_config
from mlops.models import SERVE_16BIT_ENV, resolve_source
from mlops.registry import register_version, run_promote
from mlops.search import SweepOptions, run_sweep
from mlops.train.finetune import run_finetune
from mlops.train.tasks import build_causal_lm, build_classifier
from tests.helpers import TESTS, TINY_SUMMARIZER, write

TINY_POLICY = str(TESTS / "registry" / "tiny-summarizer.yaml")


def _load(**overrides: object) -> object:
    return load_config(str(TINY_SUMMARIZER), {"registry.policy": TINY_POLICY, **overrides})


def _register_gate_serve(run_id: str, config: object) -> object:
    """Register the run's model, pass the tiny policy's staging gate, and load it through MLflow's pyfunc."""
    client = MlflowClient()
    experiment_ids = [client.get_run(run_id).info.experiment_id]
    (logged,) = client.search_logged_models(experiment_ids, filter_string=f"source_run_id = '{run_id}'")
    version = register_version(client, "tiny-summarizer", f"models:/{logged.model_id}", run_id, {"source_run_id": run_id})
    run_promote(config, "staging", version.version)  # type: ignore[arg-type]
    assert client.get_model_version_by_alias("tiny-summarizer", "staging").version == version.version
    model = mlflow.pyfunc.load_model("models:/tiny-summarizer@staging")
    out = model.predict(pd.DataFrame({"document": ["The Tenant shall pay USD 900 each month.", "Either party may terminate."]}))
    assert list(out.columns) == ["summary"] and len(out) == 2
    return model


def _adapter(run_id: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="adapter"))


def _train(model: object, input_ids: object, labels: object, steps: int) -> list[float]:
    """A few AdamW steps on one batch (the trainable parameters only); the losses."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)  # type: ignore[attr-defined]
    losses = []
    for _ in range(steps):
        loss = model(input_ids=input_ids, labels=labels).loss  # type: ignore[operator]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def test_nf4_base_trains_its_lora_and_stays_4bit() -> None:
    import bitsandbytes as bnb
    import torch

    hp = replace(TrainingConfig(), lora_r=4, device="cpu")
    model, _ = build_causal_lm(resolve_source("tiny-random-llama"), hp, None, "nf4")
    targets = [m for name, m in model.named_modules() if name.endswith(("q_proj", "v_proj")) and hasattr(m, "base_layer")]
    assert targets and all(isinstance(m.base_layer, bnb.nn.Linear4bit) for m in targets)
    batch = torch.randint(2, 500, (4, 24), generator=torch.Generator().manual_seed(0))
    losses = _train(model, batch, batch, steps=4)
    assert losses[-1] < losses[0]
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_b and all(bool(p.abs().sum() > 0) for p in lora_b), "LoRA B starts at zero: training must have moved it"
    assert all(isinstance(m.base_layer, bnb.nn.Linear4bit) for m in targets), "the base must still be 4-bit after training"
    assert not any(p.requires_grad for name, p in model.named_parameters() if "lora_" not in name)


@pytest.mark.slow
def test_qlora_summarizer_logs_an_adapter_only_model_that_gates_and_serves(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import bitsandbytes as bnb

    config = _load(**{"model.quantization": "nf4"})
    run_id = run_finetune(config)  # type: ignore[arg-type]
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["quantization"] == "nf4" and run.data.params["use_dora"] == "False"
    assert run.data.params["lora_init"] == "default" and run.data.params["target_modules"] == "default"
    losses = [m.value for m in client.get_metric_history(run_id, "train_loss")]
    assert len(losses) > 1 and losses[-1] < losses[0]

    adapter = _adapter(run_id)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert weights and all("lora_" in name for name in weights), "adapter-only: no base weights in the logged model"
    assert not any(p.name.startswith("model") and p.suffix == ".safetensors" for p in adapter.iterdir())
    assert any(bool(t.abs().sum() > 0) for name, t in weights.items() if "lora_B" in name)
    card = json.loads((adapter / "mlops_model.json").read_text())
    assert card["quantization"] == "nf4" and "re-quantised to nf4" in card["serving_base"] and SERVE_16BIT_ENV in card["serving_base"]

    served = _register_gate_serve(run_id, config).unwrap_python_model()
    assert served.base_precision == "nf4"
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in served.model.modules())

    monkeypatch.setenv(SERVE_16BIT_ENV, "1")
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").unwrap_python_model()
    assert served.base_precision == "bfloat16"
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in served.model.modules())


def test_lora_variants_reach_peft() -> None:
    hp = replace(TrainingConfig(), use_dora=True, use_rslora=True, lora_init="gaussian", device="cpu")
    model, _ = build_causal_lm(resolve_source("tiny-random-llama"), hp, "all-linear", "int8")
    peft_config = model.peft_config["default"]
    assert peft_config.use_dora and peft_config.use_rslora and peft_config.init_lora_weights == "gaussian"
    leaves = {name.rsplit(".", 1)[-1] for name in peft_config.target_modules}  # PEFT expands all-linear to module paths
    assert leaves == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.slow
def test_olora_adapter_is_saved_as_plain_lora_and_serves(tracking: str) -> None:
    config = _load(**{"training.lora_init": "olora", "training.lora_r": 4})
    run_id = run_finetune(config)  # type: ignore[arg-type]
    assert MlflowClient().get_run(run_id).data.params["lora_init"] == "olora"
    saved = json.loads((_adapter(run_id) / "adapter_config.json").read_text())
    assert saved["init_lora_weights"] is True and saved["r"] == 8, "converted against the initial adapter: twice the rank"
    _register_gate_serve(run_id, config)


@pytest.mark.slow
def test_deepseek_v3_summarizer_trains_gates_and_serves(tracking: str) -> None:
    config = _load(**{"model.source": "tiny-random-deepseek-v3"})
    run_id = run_finetune(config)  # type: ignore[arg-type]
    weights = load_file(str(_adapter(run_id) / "adapter_model.safetensors"))
    targeted = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in weights}
    assert targeted == {"q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"}
    losses = [m.value for m in MlflowClient().get_metric_history(run_id, "train_loss")]
    assert losses[-1] < losses[0]
    _register_gate_serve(run_id, config)


@pytest.mark.slow
def test_deepseek_v3_two_trial_sweep(tracking: str) -> None:
    config = load_config(
        str(TINY_SUMMARIZER), {"registry.policy": TINY_POLICY, "model.source": "tiny-random-deepseek-v3", "search.n_trials": 2}
    )
    result = run_sweep(config, SweepOptions())
    client = MlflowClient()
    children = client.search_runs(
        [client.get_experiment_by_name(config.mlflow_experiment).experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.params["model_source"] == "tiny-random-deepseek-v3" for c in children)
    assert client.get_model_version_by_alias("tiny-summarizer", "staging").tags["gate.staging"] == "passed"


@pytest.mark.parametrize(
    ("model", "training", "expected"),
    [
        ({"quantization": "nf4"}, {"prune_heads": 0.25}, "training.prune_heads: head pruning rewrites the attention weights"),
        ({"quantization": "nf4"}, {"lora_init": "pissa"}, "training.lora_init: PiSSA initialises from the SVD"),
        ({"quantization": "fp4"}, {"adapter": "prefix"}, "training.adapter: the prefix adapter is not trained on a quantised base"),
        ({"target_modules": "all-linear"}, {"freeze_ratio": 0.5}, "training.freeze_ratio: PEFT cannot restrict model.target_modules"),
        ({}, {"use_dora": True, "lora_init": "olora"}, "training.lora_init: olora moves the base weights"),
        ({}, {"adapter": "bottleneck", "use_rslora": True}, "training.use_rslora: a LoRA variant, but training.adapter is bottleneck"),
        ({"target_modules": "everything"}, {}, "model.target_modules: a list of module names or all-linear"),
        ({"quantization": "int4"}, {}, "model.quantization: must be one of"),
        ({}, {"lora_init": "kaiming"}, "training.lora_init: must be one of"),
    ],
)
def test_incompatible_combinations_are_refused_at_load(
    tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], model: dict, training: dict, expected: str
) -> None:
    data = yaml.safe_load(TINY_SUMMARIZER.read_text())
    data["model"].update(model)
    data["training"].update(training)
    data["registry"]["policy"] = TINY_POLICY
    path = write(tmp_path / "bad.yaml", yaml.safe_dump(data))
    assert main(["finetune", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_nf4_classifier_trains_its_lora_and_head_on_a_4bit_body() -> None:
    """A decoder body in 4 bits, its new `score` head and the LoRA in full precision."""
    import bitsandbytes as bnb
    import torch

    hp = replace(TrainingConfig(), lora_r=4, device="cpu")
    model, _ = build_classifier(resolve_source("tiny-random-llama"), 2, hp, ModelConfig("tiny-random-llama", quantization="nf4"))
    targets = [m for _, m in model.named_modules() if hasattr(m, "base_layer") and isinstance(m.base_layer, torch.nn.Module)]
    assert targets and all(isinstance(m.base_layer, bnb.nn.Linear4bit) for m in targets)
    head = [p for name, p in model.named_parameters() if p.requires_grad and ("classifier" in name or "score" in name)]
    assert head and all(p.dtype == torch.float32 for p in head), "the new head trains in full precision"
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    batch = torch.randint(5, 500, (8, 16), generator=torch.Generator().manual_seed(0))
    losses = _train(model, batch, torch.tensor([0, 1] * 4), steps=6)
    assert losses[-1] < losses[0]
    moved = [name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p.detach(), before[name])]
    assert any("lora_B" in name for name in moved) and any("score" in name for name in moved)
    assert all(isinstance(m.base_layer, bnb.nn.Linear4bit) for m in targets), "the body must still be 4-bit after training"


@pytest.mark.slow
def test_qlora_classifier_logs_an_adapter_only_model_that_gates_and_serves(tracking: str) -> None:
    import bitsandbytes as bnb

    # A decoder as the classifier's body (bitsandbytes' CPU kernels need layers at least 64 wide: tiny-random-bert's are 32).
    overrides = {"model.source": "tiny-random-llama", "model.quantization": "nf4", "training.max_steps": 24}
    config = load_config(str(TESTS / "configs" / "tiny.yaml"), overrides)
    run_id = run_finetune(config)
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["quantization"] == "nf4"
    weights = load_file(str(_adapter(run_id) / "adapter_model.safetensors"))
    assert weights and all("lora_" in name or "score" in name for name in weights), sorted(weights)
    card = json.loads((_adapter(run_id) / "mlops_model.json").read_text())
    assert card["quantization"] == "nf4" and "re-quantised to nf4" in card["serving_base"]

    (logged,) = client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'")
    version = register_version(client, "tiny-detector", f"models:/{logged.model_id}", run_id, {"source_run_id": run_id})
    run_promote(config, "staging", version.version)
    assert client.get_model_version_by_alias("tiny-detector", "staging").version == version.version
    model = mlflow.pyfunc.load_model("models:/tiny-detector@staging")
    out = model.predict(pd.DataFrame({"text": ["urgent: verify your account now", "lunch at noon?"]}))
    assert list(out.columns[:2]) == ["label", "probability"] and len(out) == 2
    served = model.unwrap_python_model()
    assert served.base_precision == "nf4" and any(isinstance(m, bnb.nn.Linear4bit) for m in served.model.modules())
