"""Several training processes, one results contract: `finetune` under `accelerate launch` logs one MLflow run,
from rank 0 only; a DeepSpeed config reaches `TrainingArguments`; the shipped launcher configs load."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from mlops.config import TrainingConfig, load_config
from mlops.errors import ConfigError
from tests.helpers import ROOT, TINY_CONFIG, empty_tracking_db
from tests.services import free_port

ACCELERATE_CONFIGS = ROOT / "configs" / "accelerate"
ZERO2 = ROOT / "configs" / "deepspeed" / "zero2.json"
_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
_NEEDS_DEEPSPEED = "training.deepspeed: needs the deepspeed package (pip install deepspeed, on a machine with CUDA)"


@pytest.mark.distributed
@pytest.mark.e2e
def test_two_process_finetune_logs_one_run_from_rank_zero(tmp_path: Path) -> None:
    import mlflow
    from safetensors.torch import load_file

    tracking = f"sqlite:///{empty_tracking_db(tmp_path / 'mlflow.db')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(inherited, None)
    accelerate = shutil.which("accelerate", path=env["PATH"])
    assert accelerate, "accelerate's launcher is installed with the package"
    cmd = [accelerate, "launch", "--config_file", str(ACCELERATE_CONFIGS / "cpu-2proc.yaml"), "--main_process_port", str(free_port())]
    cmd += ["-m", "mlops", "finetune", "--config", str(TINY_CONFIG)]
    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]

    client = MlflowClient(tracking)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, "rank 1 must not create a run of its own"
    run = runs[0]
    assert run.info.status == "FINISHED"
    batch, accumulation = run.data.params["batch_size"], run.data.params["gradient_accumulation_steps"]
    assert run.data.params["world_size"] == "2"
    assert run.data.params["effective_batch_size"] == str(2 * int(batch) * int(accumulation)) == "64"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert steps and len(steps) == len(set(steps)), f"each step logged once, by rank 0 alone: {steps}"
    assert max(steps) == 12, "max_steps optimizer steps, each on both ranks' batches"

    where = {"run_id": run.info.run_id, "artifact_path": "adapter", "tracking_uri": tracking}
    adapter = mlflow.artifacts.download_artifacts(**where, dst_path=str(tmp_path))
    weights = load_file(str(Path(adapter) / "adapter_model.safetensors"))
    lora_b = {name: tensor for name, tensor in weights.items() if "lora_B" in name}
    assert lora_b and any(bool(t.abs().sum() > 0) for t in lora_b.values()), "LoRA B starts at zero: training must have moved it"


def test_deepspeed_config_reaches_training_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DeepSpeed installed: `run_trainer` hands `training.deepspeed` to transformers' `TrainingArguments`
    (whose DeepSpeed integration then asks for the package)."""
    import transformers

    from mlops.train.loop import run_trainer
    from mlops.train.tasks import TrainingSets

    seen: dict[str, object] = {}

    class ArgumentsBuilt(Exception):
        pass

    def record(**kwargs: object) -> None:
        seen.update(kwargs)
        raise ArgumentsBuilt

    monkeypatch.setattr(transformers, "TrainingArguments", record)
    with pytest.raises(ArgumentsBuilt), run_trainer(None, TrainingConfig(deepspeed=str(ZERO2), device="cpu"), TrainingSets([], [], None)):  # type: ignore[arg-type]
        pass
    assert seen["deepspeed"] == str(ZERO2)
    monkeypatch.undo()

    hp = TrainingConfig(deepspeed={"zero_optimization": {"stage": 2}}, device="cpu", max_steps=1)
    with pytest.raises(Exception, match="deepspeed"), run_trainer(None, hp, TrainingSets([], [], None)):  # type: ignore[arg-type]
        pass


def test_deepspeed_config_errors_are_reported_at_load_time(tmp_path: Path) -> None:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["training"]["deepspeed"] = str(tmp_path / "gone.json")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as missing:
        load_config(str(path), {})
    assert f"training.deepspeed: file not found: {tmp_path / 'gone.json'}" in missing.value.errors
    assert _DEEPSPEED or _NEEDS_DEEPSPEED in missing.value.errors
    data["training"]["deepspeed"] = {}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"training.deepspeed: an empty mapping"):
        load_config(str(path), {})


def test_shipped_launcher_configs_load() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    cpu = load_config_from_file(str(ACCELERATE_CONFIGS / "cpu-2proc.yaml"))
    assert (cpu.distributed_type.value, cpu.num_processes, cpu.use_cpu) == ("MULTI_GPU", 2, True)
    gpu = load_config_from_file(str(ACCELERATE_CONFIGS / "multi-gpu.yaml"))
    assert (gpu.distributed_type.value, gpu.use_cpu, gpu.mixed_precision) == ("MULTI_GPU", False, "no")
    zero2 = json.loads(ZERO2.read_text())
    assert zero2["zero_optimization"]["stage"] == 2 and zero2["train_micro_batch_size_per_gpu"] == "auto"
    assert TrainingConfig(deepspeed=str(ZERO2)).check("training") == ([] if _DEEPSPEED else [_NEEDS_DEEPSPEED])
