"""The sweep planner: `mlops plan` offline on the DeepSeek 7B QLoRA config, the offline refusal of a hub model before
any run, and a trial beyond the memory budget pruned before it starts. The estimator itself: tests/models/test_memory.py."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.cli import main
from mlops.config import load_config
from mlops.models import TinyRandomLlamaSource
from mlops.search import SweepOptions, run_sweep
from mlops.search.plan import MEASURED_TOKENS_PER_SECOND, infeasible_before_launch, plan_sweep
from mlops.tracking import INFEASIBLE_TAG
from tests.helpers import ROOT, TINY_SUMMARIZER, write

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
    data = yaml.safe_load((TINY_SUMMARIZER).read_text())
    data["training"] |= {"device": "cpu", "max_steps": 2, "memory_budget_gib": budget}
    data["search"] = {
        "n_trials": 2,
        "sampler": "grid",
        "metric": "eval_rougeL",
        "space": {"batch_size": {"type": "categorical", "choices": [2, 256]}},
    }
    return write(tmp_path / "tiny-summarizer.yaml", yaml.safe_dump(data))


@pytest.mark.slow
def test_a_trial_beyond_the_budget_is_pruned_before_it_starts(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corners = plan_sweep(load_config(str(_budgeted_config(tmp_path, None)))).corners
    small, big = sorted(c.estimate.peak_gib for c in corners)
    # no serving cost measured: the served model loads its own base, which is not what this counts
    config = load_config(str(_budgeted_config(tmp_path, (small + big) / 2)), {"cost.examples": 0})
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
