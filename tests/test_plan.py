"""The sweep planner: `mlops plan` offline on the DeepSeek 7B QLoRA config, the estimator against real tiny models,
the offline refusal of a hub model before any run, and a trial beyond the memory budget pruned before it starts."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from mlflow import MlflowClient
from peft import prepare_model_for_kbit_training
from transformers import LlamaConfig, LlamaForCausalLM

from mlops.cli import main
from mlops.config import TrainingConfig, load_config
from mlops.models import PretrainedDirSource, TinyRandomLlamaSource, load_causal_lm, resolve_source
from mlops.models.architecture import _architecture_of as architecture
from mlops.models.architecture import architecture_of, from_config, shipped_architectures
from mlops.models.memory import TrainingShape, estimate_peak_memory, trainable_parameters, weight_bytes
from mlops.search import SweepOptions, run_sweep
from mlops.search.plan import MEASURED_TOKENS_PER_SECOND, infeasible_before_launch, plan_sweep
from mlops.tracking import INFEASIBLE_TAG
from mlops.train.structure import adapt

from .conftest import ROOT, TESTS, write

MLPROJECT_PLAN = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["plan"]


def _plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    assert main(["plan", "--config", "deepseek-7b-qlora", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_of_the_deepseek_7b_qlora_config_offline_shows_which_corners_fit_16_gib(capsys: pytest.CaptureFixture[str]) -> None:
    corners = _plan_json(capsys, "--quantization", "nf4,none")
    assert len(corners) == 2 * 2 * 2 * 2 * 2  # quantisation x batch x rank x freeze ratio x checkpointing
    for corner in corners:
        assert {"params", "peak_gib", "fits"} <= set(corner)
        assert corner["fits"] == (corner["peak_gib"] <= 16)
    nf4_small = [c for c in corners if c["params"]["quantization"] == "nf4" and c["params"]["batch_size"] == 4]
    bf16_big = [c for c in corners if c["params"]["quantization"] == "none" and c["params"]["batch_size"] == 8]
    assert nf4_small and all(c["fits"] for c in nf4_small)
    assert bf16_big and not any(c["fits"] for c in bf16_big)
    # without checkpointing and with every layer trained, even nf4 does not fit the bigger batch
    heavy = {"quantization": "nf4", "batch_size": 8, "freeze_ratio": 0.0, "gradient_checkpointing": False}
    assert not any(c["fits"] for c in corners if heavy.items() <= c["params"].items())
    ranks = {c["params"]["lora_r"]: c["trainable_params"] for c in corners}
    assert ranks[16] == 2 * ranks[8]  # the adapter grows with the rank

    default = _plan_json(capsys)  # the config's own quantisation
    assert {c["params"]["quantization"] for c in default} == {"nf4"} and len(default) == 16

    assert main(["plan", "--config", "deepseek-7b-qlora"]) == 0
    table = capsys.readouterr().out
    assert "budget: 16 GiB (training.memory_budget_gib)" in table and "deepseek-llm-7b-base" in table


def test_the_mlproject_command_line_plans() -> None:
    values = {"config": "deepseek-7b-qlora", "json": "true", "quantization": ""}  # quoted as `mlflow run` does
    python, *args = shlex.split(MLPROJECT_PLAN["command"].format(**{k: shlex.quote(v) for k, v in values.items()}))
    assert python == "python"
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    corners = json.loads(done.stdout)
    assert len(corners) == 16 and all(c["params"]["quantization"] == "nf4" for c in corners)


def test_plan_refuses_an_unknown_quantization(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--config", "deepseek-7b-qlora", "--quantization", "nf3"]) == 2
    assert "quantization: must be one of none, nf4, fp4, int8, got nf3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("hub_id", "published_billions"),
    [("deepseek-ai/deepseek-llm-7b-base", 6.91), ("deepseek-ai/DeepSeek-V2-Lite", 15.7), ("deepseek-ai/DeepSeek-V3", 671.0)],
)
def test_shipped_figures_give_the_published_parameter_counts(hub_id: str, published_billions: float) -> None:
    assert hub_id in shipped_architectures()
    arch = architecture_of(hub_id, "summarization")
    assert arch.total_params / 1e9 == pytest.approx(published_billions, rel=0.01)


@pytest.mark.parametrize("source", ["tiny-random-llama", "tiny-random-deepseek-v3"])
def test_estimator_counts_what_the_toolkit_builds(source: str) -> None:
    arch = architecture_of(source, "summarization")
    base = resolve_source(source).load_causal_lm()
    assert arch.total_params == sum(p.numel() for p in base.parameters())
    assert weight_bytes(arch, "none") == sum(p.numel() * p.element_size() for p in base.parameters())
    hp = TrainingConfig(lora_r=4, freeze_ratio=0.5)
    model, _ = adapt(base, hp, "summarization", list(arch.default_targets), None)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    shape = TrainingShape(batch_size=2, seq_len=32, lora_r=4, freeze_ratio=0.5, device="cpu")
    assert trainable_parameters(arch, shape) == trained > 0
    bigger = estimate_peak_memory(arch, TrainingShape(batch_size=4, seq_len=32, lora_r=4, freeze_ratio=0.5, device="cpu"))
    assert bigger.activations == 2 * estimate_peak_memory(arch, shape).activations  # activations scale with the tokens
    every_layer = estimate_peak_memory(arch, TrainingShape(4, 32, lora_r=4, device="cpu"))
    checkpointed = estimate_peak_memory(arch, TrainingShape(4, 32, lora_r=4, gradient_checkpointing=True, device="cpu"))
    assert bigger.activations < every_layer.activations  # frozen bottom layers keep nothing for the backward pass
    assert checkpointed.activations < every_layer.activations


def _tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of every weight and buffer, with bitsandbytes' quantisation constants (absmax, nested absmax, codes)."""
    tensors = [*model.parameters(), *model.buffers()]
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            tensors += [state.absmax, state.code]
            if state.state2 is not None:
                tensors += [state.state2.absmax, state.state2.code]
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


@pytest.mark.parametrize("quantization", ["nf4", "int8"])
def test_quantized_weight_estimate_matches_the_loaded_base(quantization: str, tmp_path: Path) -> None:
    config = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4)
    config.vocab_size = 2048
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    base = prepare_model_for_kbit_training(load_causal_lm(PretrainedDirSource(str(tmp_path)), quantization, "cpu"), False)
    estimate = weight_bytes(from_config("random-llama", config, "summarization"), quantization)
    assert estimate / _tensor_bytes(base) == pytest.approx(1.0, abs=0.02)
    assert estimate < weight_bytes(from_config("random-llama", config, "summarization"), "none") / 2


def _bytes_kept_for_backward(model: torch.nn.Module, ids: torch.Tensor) -> int:
    """What autograd keeps for the backward pass of one forward: the storages of saved tensors that are not weights."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights and storage.nbytes():
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(input_ids=ids)
    return sum(kept.values())


@pytest.mark.parametrize("source", ["tiny-random-llama", "tiny-random-deepseek-v3"])
@pytest.mark.parametrize("freeze_ratio", [0.0, 0.5])
def test_activation_estimate_matches_what_autograd_keeps(source: str, freeze_ratio: float) -> None:
    arch = architecture_of(source, "summarization")
    base = resolve_source(source).load_causal_lm()
    base.config.use_cache = False
    hp = TrainingConfig(lora_r=4, lora_dropout=0.05, freeze_ratio=freeze_ratio)
    model, _ = adapt(base, hp, "summarization", list(arch.default_targets), None)
    model.train()
    ids = torch.randint(0, arch.vocab_size, (4, 64), generator=torch.Generator().manual_seed(0))
    kept = _bytes_kept_for_backward(model, ids)
    shape = TrainingShape(4, 64, lora_r=4, freeze_ratio=freeze_ratio, lora_dropout=0.05, device="cpu")
    assert 0.85 <= estimate_peak_memory(arch, shape).activations / kept <= 1.15


def test_tiny_built_in_sources_give_their_config_without_building_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object) -> None:
        raise AssertionError("the planner built the model")

    monkeypatch.setattr(TinyRandomLlamaSource, "load_causal_lm", refuse)
    architecture.cache_clear()
    assert architecture_of("tiny-random-deepseek-v3", "classification").n_routed_experts == 4


@pytest.mark.parametrize("command", ["sweep", "main", "finetune"])
def test_offline_hub_model_stops_before_any_run(command: str, tracking: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--config", "deepseek-7b-qlora"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "hub model 'deepseek-ai/deepseek-llm-7b-base' is not available offline" in err
    assert "set model.source to that directory" in err
    assert _runs() == []


def _runs() -> list:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments) if experiments else []


def _budgeted_config(tmp_path: Path, budget: float | None) -> Path:
    data = yaml.safe_load((TESTS / "configs" / "tiny-summarizer.yaml").read_text())
    data["training"] |= {"device": "cpu", "max_steps": 2, "memory_budget_gib": budget}
    data["search"] = {
        "n_trials": 2,
        "sampler": "grid",
        "metric": "eval_rougeL",
        "space": {"batch_size": {"type": "categorical", "choices": [2, 256]}},
    }
    return write(tmp_path / "tiny-summarizer.yaml", yaml.safe_dump(data))


def test_a_trial_beyond_the_budget_is_pruned_before_it_starts(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corners = plan_sweep(load_config(str(_budgeted_config(tmp_path, None)))).corners
    small, big = sorted(c.estimate.peak_gib for c in corners)
    config = load_config(str(_budgeted_config(tmp_path, (small + big) / 2)))
    loads = []
    build = TinyRandomLlamaSource.load_causal_lm
    monkeypatch.setattr(TinyRandomLlamaSource, "load_causal_lm", lambda self: loads.append(1) or build(self))

    result = run_sweep(config, SweepOptions(promote=False))

    client = MlflowClient()
    storage = client.get_run(result.parent_run_id).data.params["storage"]
    trials = {t.params["batch_size"]: t for t in optuna.load_study(study_name=result.study_name, storage=storage).trials}
    assert trials[256].state == optuna.trial.TrialState.PRUNED
    assert trials[2].state == optuna.trial.TrialState.COMPLETE
    killed = client.get_run(trials[256].user_attrs["mlflow_run_id"])
    assert killed.info.status == "KILLED"
    reason = killed.data.tags[INFEASIBLE_TAG]
    assert f"estimated peak {big:.2f} GiB exceeds training.memory_budget_gib" in reason
    assert killed.data.params["batch_size"] == "256" and killed.data.metrics["estimated_peak_gib"] == pytest.approx(big, abs=1e-6)
    assert "train_seconds" not in killed.data.metrics  # it never trained
    finished = client.get_run(trials[2].user_attrs["mlflow_run_id"])
    assert finished.info.status == "FINISHED" and INFEASIBLE_TAG not in finished.data.tags
    assert len(loads) == 1  # the model was built for the trial that ran, not for the one that could not fit


def test_a_sweep_where_nothing_fits_stops_before_any_run(tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _budgeted_config(tmp_path, 0.25)  # below the fixed overhead alone
    assert main(["sweep", "--config", str(path), "--promote", "false"]) == 2
    err = capsys.readouterr().err
    assert "training.memory_budget_gib: no configuration of the search space fits 0.25 GiB (the smallest estimate is" in err
    assert _runs() == []


def test_without_a_budget_nothing_is_infeasible_before_launch(tmp_path: Path) -> None:
    config = load_config(str(_budgeted_config(tmp_path, None)))
    assert infeasible_before_launch(config.with_params({"batch_size": 100_000})) is None
    budgeted = load_config(str(_budgeted_config(tmp_path, 1.0)))
    assert infeasible_before_launch(budgeted.with_params({"batch_size": 100_000})) is not None


def test_cpu_plan_without_a_budget_judges_nothing_and_shows_measured_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(str(_budgeted_config(tmp_path, None)))
    plan = plan_sweep(config)
    assert plan.budget.gib is None and "CPU" in plan.budget.source
    assert all(c.fits is None and c.tokens_per_second is None for c in plan.corners)
    assert "unknown" in plan.table()
    monkeypatch.setitem(MEASURED_TOKENS_PER_SECOND, ("cpu", "tiny-random-llama"), 900.0)
    assert {c.tokens_per_second for c in plan_sweep(config).corners} == {900.0}
