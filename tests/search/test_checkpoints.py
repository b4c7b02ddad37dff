"""Trial checkpoints: a worker SIGKILLed after epoch 1's checkpoint, and the retry that resumes from it, trains only
the remaining steps and ends with the metrics of the same trial run uninterrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.search import SweepOptions, run_sweep
from mlops.search.checkpoints import RESUMED_METRIC, trial_checkpoints
from mlops.tracking import FROM_SCRATCH_TAG, RESUMED_TAG
from mlops.train import last_checkpoint
from tests.helpers import TINY_CONFIG

# The worker: the sweep CLI, stopped for good once the first checkpoint has been saved (and handed to its callbacks),
# so that the test can SIGKILL it at a known point. `ready` is written only after the save returned.
_WORKER = """
import sys, time
from pathlib import Path
from transformers.trainer_callback import CallbackHandler

ready = Path(sys.argv[1])
saved = CallbackHandler.on_save

def on_save_then_hang(self, *args, **kwargs):
    control = saved(self, *args, **kwargs)
    ready.write_text(str(args[1].global_step))
    time.sleep(3600)
    return control

CallbackHandler.on_save = on_save_then_hang
from mlops.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _config_file(tmp_path: Path, **search: object) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["training"].update({"epochs": 3, "max_steps": None, "logging_steps": 4})
    data["search"].update({"n_trials": 1, "heartbeat_interval": 1, **search})
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _kill_after_first_checkpoint(config: Path, storage: str, study: str, ready: Path) -> None:
    cmd = [sys.executable, "-c", _WORKER, str(ready), "sweep", "--config", str(config), "--storage", storage, "--study-name", study]
    worker = subprocess.Popen([*cmd, "--promote", "false"], env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if not ready.exists():
            pytest.fail(f"the worker saved no checkpoint: {worker.stderr.read() if worker.poll() is not None and worker.stderr else ''}")
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=60)


def _artifacts(client: MlflowClient, run_id: str, path: str) -> list[str]:
    return sorted(a.path for a in client.list_artifacts(run_id, path))


def _final(client: MlflowClient, run_id: str) -> dict[str, float]:
    metrics = client.get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(("eval_", "test_")) and not k.endswith(("_runtime", "_per_second"))}


def test_checkpoints_go_beside_a_sqlite_study_else_to_the_working_directory_a_named_folder_or_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    search = load_config(str(TINY_CONFIG)).search
    beside = trial_checkpoints(search, f"sqlite:///{tmp_path / 'db' / 'optuna.db'}", "a/b", tmp_path / "scratch")
    assert beside is not None and beside.folder(3) == tmp_path / "db" / "checkpoints" / "a_b" / "trial-3"
    assert beside.own_parent and not beside.to_mlflow
    server = trial_checkpoints(search, "postgresql://u@h/optuna", "s", tmp_path / "scratch")
    assert server is not None and server.root == tmp_path / "checkpoints" / "s"
    named = trial_checkpoints(replace(search, checkpoint_dir=str(tmp_path / "mine")), "sqlite:///x.db", "s", tmp_path)
    assert named is not None and named.root == tmp_path / "mine" / "s" and not named.own_parent
    uploaded = trial_checkpoints(replace(search, checkpoint_dir="mlflow"), "sqlite:///x.db", "s", tmp_path / "scratch")
    assert uploaded is not None and uploaded.to_mlflow and uploaded.root == tmp_path / "scratch" / "checkpoints"
    assert trial_checkpoints(replace(search, keep_checkpoints=0), "sqlite:///x.db", "s", tmp_path) is None


@pytest.mark.e2e
def test_sigkilled_trial_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(tracking: str, tmp_path: Path) -> None:
    """Checkpoints uploaded to the trial's run (`checkpoint_dir: mlflow`); the stale-heartbeat test below resumes from a
    local folder."""
    config = _config_file(tmp_path, checkpoint_dir="mlflow")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    ready = tmp_path / "ready"
    _kill_after_first_checkpoint(config, storage, "killed", ready)
    steps_per_epoch = int(ready.read_text())
    lost_folder = tmp_path / "checkpoints" / "killed" / "trial-0"
    client = MlflowClient()
    lost_run = optuna.load_study(study_name="killed", storage=storage).trials[0].user_attrs["mlflow_run_id"]
    assert _artifacts(client, lost_run, "checkpoint") == [f"checkpoint/checkpoint-{steps_per_epoch}"]
    assert f"checkpoint/checkpoint-{steps_per_epoch}/trainer_state.json" in _artifacts(
        client, lost_run, f"checkpoint/checkpoint-{steps_per_epoch}"
    )
    assert not lost_folder.exists()

    resumed = run_sweep(load_config(str(config)), SweepOptions(storage=storage, study_name="killed", promote=False))
    uninterrupted = SweepOptions(storage=f"sqlite:///{tmp_path / 'whole.db'}", study_name="whole", promote=False)
    whole = run_sweep(load_config(str(config)), uninterrupted)

    study = optuna.load_study(study_name="killed", storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert study.trials[1].system_attrs["failed_trial"] == 0 and study.trials[1].params == whole.best_params
    retry = client.get_run(resumed.best_run_id)
    assert retry.data.tags["mlops.retry_of_trial"] == "0" and retry.data.tags[RESUMED_TAG] == str(steps_per_epoch)
    assert FROM_SCRATCH_TAG not in retry.data.tags
    assert retry.data.metrics[RESUMED_METRIC] == steps_per_epoch

    # the retry trained only epochs 2 and 3, and holds the lost run's curves up to its checkpoint: whole curves, with
    # the steps of an uninterrupted trial
    retry_loss = client.get_metric_history(retry.info.run_id, "train_loss")
    whole_steps = [m.step for m in client.get_metric_history(whole.best_run_id, "train_loss")]
    assert whole_steps[0] <= 4 and max(whole_steps) == 3 * steps_per_epoch
    assert sorted(m.step for m in retry_loss) == whole_steps
    lost_loss = {(m.step, m.value) for m in client.get_metric_history(lost_run, "train_loss") if m.step <= steps_per_epoch}
    assert lost_loss and {(m.step, m.value) for m in retry_loss if m.step <= steps_per_epoch} == lost_loss, "copied"
    copied = [m.timestamp for m in retry_loss if m.step <= steps_per_epoch]
    assert max(copied) < retry.info.start_time, "the points up to the checkpoint were logged by the lost run, not retrained"
    eval_steps = sorted(m.step for m in client.get_metric_history(retry.info.run_id, "eval_loss"))
    assert eval_steps == [steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch]
    assert study.trials[1].intermediate_values.keys() == {1, 2, 3}, "the lost epoch 1 report is carried over for the pruner"

    final, reference = _final(client, retry.info.run_id), _final(client, whole.best_run_id)
    assert {"eval_f1", "eval_loss", "test_f1", "test_loss"} <= final.keys() and final.keys() == reference.keys()
    for name, value in reference.items():
        assert final[name] == pytest.approx(value, abs=1e-6), name
    assert resumed.best_value == pytest.approx(whole.best_value, abs=1e-6)

    assert all(r.info.status != "RUNNING" for e in client.search_experiments() for r in client.search_runs([e.experiment_id]))
    assert not lost_folder.exists() and not (tmp_path / "checkpoints" / "killed" / "trial-1").exists(), "ended trials keep no checkpoint"
    assert not (tmp_path / "checkpoints").exists(), "nor an empty folder"
    assert _artifacts(client, lost_run, "checkpoint") == _artifacts(client, retry.info.run_id, "checkpoint") == []


@pytest.mark.e2e
@pytest.mark.postgres
def test_another_worker_resumes_a_lost_trial_once_its_heartbeat_is_stale(tracking: str, tmp_path: Path, postgres_url: str) -> None:
    """On PostgreSQL the lost trial is found by its stale heartbeat, by a worker that was not the one that ran it."""
    config = _config_file(tmp_path)
    storage, study_name = f"{postgres_url}/optuna", f"stale-{tmp_path.name}"
    ready = tmp_path / "ready"
    _kill_after_first_checkpoint(config, storage, study_name, ready)
    steps_per_epoch = int(ready.read_text())
    assert last_checkpoint(tmp_path / "checkpoints" / study_name / "trial-0") is not None, (
        "beside a non-SQLite study: the working directory"
    )

    resumed = run_sweep(load_config(str(config)), SweepOptions(storage=storage, study_name=study_name, promote=False))

    study = optuna.load_study(study_name=study_name, storage=storage.replace("postgresql://", "postgresql+psycopg2://"))
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"] and study.trials[1].system_attrs["failed_trial"] == 0
    client = MlflowClient()
    retry = client.get_run(resumed.best_run_id)
    assert retry.data.tags[RESUMED_TAG] == str(steps_per_epoch) and retry.data.tags["mlops.retry_of_trial"] == "0"
    loss_steps = sorted(m.step for m in client.get_metric_history(retry.info.run_id, "train_loss"))
    assert loss_steps[-1] == 3 * steps_per_epoch and len(loss_steps) == len(set(loss_steps)), "one whole curve"
    lost = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert lost.info.status == "FAILED" and lost.data.tags["error"].startswith("worker lost: trial 0") and retry.info.status == "FINISHED"
    assert not (tmp_path / "checkpoints").exists()
