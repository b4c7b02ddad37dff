"""The knobs that change what a served model costs: dropped top layers (in the trained and in the served model), a LoRA
adapter merged into the base, dynamic int8 linear layers on CPU, a bitsandbytes precision refused without CUDA, and
decoding settings that reach `generate`; all applied by the pyfunc model from what the adapter card records."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pandas as pd
import pytest
import torch

from mlops.cli import main
from mlops.config import ExperimentConfig, ServingConfig, load_config
from mlops.errors import ConfigError
from mlops.evaluate import prompt_ids
from mlops.train.finetune import Prepared, prepare
from mlops.train.loop import count_parameters, save_adapter
from mlops.train.structure import calibration_batch, preflight
from mlops.train.tasks import build_classifier
from mlops.train.tasks.summarization import build_causal_lm
from tests.helpers import TINY_CONFIG, TINY_SUMMARIZER, legal_rows, write

LABELS = {"label_names": ["legit", "fraud"], "max_length": 32}
TEXTS = ["Your transfer of $20 to Anna was completed", "URGENT: verify your account now or it will be locked"]
DYNAMIC_LINEAR = torch.ao.nn.quantized.dynamic.Linear


@pytest.fixture(scope="module")
def tiny() -> tuple[ExperimentConfig, Prepared]:
    config = load_config(str(TINY_CONFIG))
    return config, prepare(config)


def _batch(prepared: Prepared, n: int = 16) -> dict[str, torch.Tensor]:
    data: Any = prepared.data
    return calibration_batch(prepared.tokenizer, data.train.texts, data.train.labels, 32, n)


def _train(model: Any, batch: dict[str, torch.Tensor], steps: int = 5) -> None:
    """A few AdamW steps at a high rate: LoRA B (zero at start) must move, so that the adapter changes predictions."""
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    model.train()
    for _ in range(steps):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    moved = [n for n, p in model.named_parameters() if n in before and not torch.equal(p.detach(), before[n])]
    assert any("lora_B" in n for n in moved), "training must have moved the LoRA B matrices"


def _trained_classifier(tiny: tuple[ExperimentConfig, Prepared], **training: Any) -> tuple[Any, Any]:
    config, prepared = tiny
    model, report = build_classifier(prepared.source, 2, replace(config.training, **training), config.model)
    model.config.pad_token_id = prepared.tokenizer.pad_token_id
    _train(model, _batch(prepared))
    return model, report


def _save(tiny: tuple[ExperimentConfig, Prepared], model: Any, out: Path, serving: ServingConfig | None = None) -> Path:
    config, prepared = tiny
    save_adapter(model, prepared.tokenizer, out, replace(config, serving=serving or ServingConfig()), LABELS)
    return out


def _serve(adapter: Path, kind: str = "AdapterClassifier") -> Any:
    from mlops.serving import pyfunc

    served = getattr(pyfunc, kind)()
    served.load_context(SimpleNamespace(artifacts={"adapter": str(adapter)}))
    return served


def _logits(model: Any, prepared: Prepared) -> torch.Tensor:
    enc = prepared.tokenizer(TEXTS, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits: torch.Tensor = model(**enc).logits
    return logits


def test_dropped_layers_leave_the_trained_and_the_served_classifier(tmp_path: Path, tiny: tuple[ExperimentConfig, Prepared]) -> None:
    config, prepared = tiny
    full, _ = build_classifier(prepared.source, 2, config.training, config.model)
    model, report = _trained_classifier(tiny, drop_layers=1)
    base = model.get_base_model()
    assert len(base.bert.encoder.layer) == base.config.num_hidden_layers == 1
    assert report.metrics()["dropped_layers"] == 1
    top_layer = sum(p.numel() for p in full.get_base_model().bert.encoder.layer[1].parameters())  # LoRA inside it included
    assert count_parameters(full)[1] - count_parameters(model)[1] == top_layer

    adapter = _save(tiny, model, tmp_path / "adapter")
    assert json.loads((adapter / "mlops_model.json").read_text())["structure"]["num_hidden_layers"] == 1
    served = _serve(adapter)
    served_base = served.model.get_base_model()
    assert len(served_base.bert.encoder.layer) == served_base.config.num_hidden_layers == 1
    assert sum(p.numel() for p in served.model.parameters()) == count_parameters(model)[1]
    assert torch.equal(_logits(served.model, prepared), _logits(model, prepared))


@pytest.mark.parametrize("precision", ["fp32", "dynamic_int8"])
def test_a_merged_adapter_serves_what_the_unmerged_one_does(
    precision: str, tmp_path: Path, tiny: tuple[ExperimentConfig, Prepared]
) -> None:
    _, prepared = tiny
    model, _ = _trained_classifier(tiny)
    unmerged = _serve(_save(tiny, model, tmp_path / "unmerged", ServingConfig(precision=precision)))  # type: ignore[arg-type]
    merged = _serve(_save(tiny, model, tmp_path / "merged", ServingConfig(merge_adapter=True, precision=precision)))  # type: ignore[arg-type]
    assert any("lora_A" in name for name, _ in unmerged.model.named_modules())
    assert type(merged.model).__name__ == "BertForSequenceClassification"
    assert not any("lora_" in name for name, _ in merged.model.named_modules()), "merged: no LoRA layer is left"
    expected = _logits(model, prepared)
    fresh = _logits(prepared.source.load_classifier(2).eval(), prepared)
    assert not torch.allclose(fresh, expected, atol=1e-3), "the adapter must change predictions, or merging proves nothing"
    tolerance = 1e-5 if precision == "fp32" else 5e-2  # int8 weights round differently once the LoRA product is folded in
    assert torch.allclose(_logits(merged.model, prepared), _logits(unmerged.model, prepared), atol=tolerance)
    if precision == "fp32":
        assert torch.allclose(_logits(merged.model, prepared), expected, atol=1e-5)


def test_dynamic_int8_serving_quantises_the_base_linear_layers_and_predicts_on_cpu(
    tracking: str, tmp_path: Path, tiny: tuple[ExperimentConfig, Prepared]
) -> None:
    from mlops.serving import log_adapter_model

    _, prepared = tiny
    model, _ = _trained_classifier(tiny)
    adapter = _save(tiny, model, tmp_path / "adapter", ServingConfig(precision="dynamic_int8"))
    assert json.loads((adapter / "mlops_model.json").read_text())["serving"] == {"merge_adapter": False, "precision": "dynamic_int8"}
    with mlflow.start_run():
        info = log_adapter_model(adapter)
    logged = mlflow.pyfunc.load_model(info.model_uri)
    out = logged.predict(pd.DataFrame({"text": TEXTS}))
    served = logged.unwrap_python_model().model
    modules = dict(served.named_modules())
    base_linear = [name for name in modules if name.endswith(".base_layer")]  # every linear layer of the body carries LoRA
    assert len(base_linear) == 12 and all(isinstance(modules[name], DYNAMIC_LINEAR) for name in base_linear)
    adapter_linear = [name for name in modules if re.search(r"lora_[AB]\.default$", name)]
    assert adapter_linear and not any(isinstance(modules[name], DYNAMIC_LINEAR) for name in adapter_linear), "the adapter stays fp32"
    expected = torch.softmax(_logits(model, prepared), dim=-1).numpy()
    assert out[["p_legit", "p_fraud"]].to_numpy() == pytest.approx(expected, abs=5e-2)
    assert not (out[["p_legit", "p_fraud"]].to_numpy() == expected).all(), "int8 weights cannot reproduce fp32 exactly"


def test_the_served_summarizer_drops_layers_quantises_and_decodes_as_the_trial_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops.models import resolve_source

    config = load_config(str(TINY_SUMMARIZER))
    base_source = resolve_source(config.model.source)
    tokenizer = base_source.load_tokenizer()
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model, _ = build_causal_lm(base_source, replace(config.training, drop_layers=1), None)
    assert model.get_base_model().config.num_hidden_layers == 1
    gen = replace(config.generation, decoding="beam", num_beams=3, length_penalty=-0.5, max_new_tokens=4, max_document_tokens=40)
    trial = replace(config, generation=gen, serving=ServingConfig(precision="dynamic_int8"))
    out = tmp_path / "adapter"
    save_adapter(model, tokenizer, out, trial, {"generation": asdict(gen), "seed": 0})

    served = _serve(out, "AdapterSummarizer")
    base = served.model.get_base_model()
    assert len(base.model.layers) == base.config.num_hidden_layers == 1
    assert isinstance(base.model.layers[0].mlp.down_proj, DYNAMIC_LINEAR)
    calls: list[dict[str, Any]] = []
    generate = served.model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return generate(*args, **kwargs)

    monkeypatch.setattr(served.model, "generate", spy)
    documents = [row["document"] for row in legal_rows(n=2)]
    summaries = served.predict(None, pd.DataFrame({"document": documents}))
    assert len(summaries) == 2 and calls
    assert {(c["num_beams"], c["length_penalty"], c["max_new_tokens"], c["do_sample"]) for c in calls} == {(3, -0.5, 4, False)}
    cut = [len(prompt_ids(served.tokenizer, d, gen.template, 40)[0]) for d in documents]  # documents cut to max_document_tokens
    whole = [len(prompt_ids(served.tokenizer, d, gen.template, 10_000)[0]) for d in documents]
    assert [c["input_ids"].shape[1] for c in calls] == [max(cut)] and max(cut) < max(whole)


def test_a_bitsandbytes_precision_is_refused_without_cuda(
    tmp_path: Path, tiny: tuple[ExperimentConfig, Prepared], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops.models import base_quantization

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, prepared = tiny
    model, _ = build_classifier(prepared.source, 2, config.training, config.model)
    adapter = _save(tiny, model, tmp_path / "adapter", ServingConfig(precision="bnb_nf4"))
    with pytest.raises(ConfigError, match=r"^serving.precision: bnb_nf4 serves the base through bitsandbytes on a CUDA GPU"):
        _serve(adapter)
    assert base_quantization(ServingConfig(precision="bnb_nf4"), cuda=True) == "nf4"  # on a GPU: the QLoRA loader's nf4
    assert base_quantization(ServingConfig(precision="bnb_int8"), cuda=True) == "int8"
    assert base_quantization(ServingConfig(precision="dynamic_int8"), cuda=False) == "none"  # quantised after loading

    searched = {"serving.precision": {"type": "categorical", "choices": ["fp32", "bnb_int8"]}}
    with pytest.raises(ConfigError, match=r"search.space.serving.precision.choices\[1\]: bnb_int8 serves through bitsandbytes"):
        preflight(load_config(str(TINY_CONFIG), {"search.space": searched}), prepared.source)
    path = write(tmp_path / "c.yaml", TINY_CONFIG.read_text() + "serving:\n  precision: bnb_nf4\n")
    assert main(["finetune", "--config", str(path)]) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if " INFO mlflow." not in line]
    assert len(lines) == 1 and "serving.precision: bnb_nf4 serves through bitsandbytes on a CUDA GPU" in lines[0], lines


def test_dropping_every_layer_is_refused_before_any_run(tiny: tuple[ExperimentConfig, Prepared]) -> None:
    _, prepared = tiny
    searched = {"drop_layers": {"type": "categorical", "choices": [0, 2]}}
    with pytest.raises(ConfigError, match=r"^training.drop_layers: 2 of the 2 layers of BertForSequenceClassification; at least one"):
        preflight(load_config(str(TINY_CONFIG), {"search.space": searched}), prepared.source)
    preflight(load_config(str(TINY_CONFIG), {"training.drop_layers": 1}), prepared.source)  # one of two: fine
