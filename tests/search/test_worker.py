"""A sweep a team can leave running: resume, a real SIGKILL, SQLite's one-worker rule, and two workers on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.config import load_config
from mlops.errors import ConfigError
from mlops.search import SweepOptions, run_sweep
from mlops.search.study import open_shared_study
from mlops.tracking import FROM_SCRATCH_TAG
from tests.helpers import TINY_CONFIG


def _children(client: MlflowClient, parent_id: str) -> list:
    experiment = client.get_run(parent_id).info.experiment_id
    return [r for r in client.search_runs([experiment]) if r.data.tags.get("mlflow.parentRunId") == parent_id]


def _all_runs(client: MlflowClient) -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _config_file(tmp_path: Path, **training: object) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["training"].update(training)
    data["search"]["heartbeat_interval"] = 1
    data["registry"]["policy"] = str(TINY_CONFIG.parents[1] / "registry" / "tiny-detector.yaml")
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _sweep_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mlops", "sweep", "--config", str(config), *args]


@pytest.mark.slow
def test_sqlite_refuses_a_second_worker(tracking: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = open_shared_study(url, "s", directions=["maximize"])
    try:
        with pytest.raises(ConfigError, match=r"in use by another sweep worker.*optuna #820.*PostgreSQL"):
            open_shared_study(url, "s", directions=["maximize"])
        out = subprocess.run(
            _sweep_cmd(TINY_CONFIG, "--storage", url, "--study-name", "s"), capture_output=True, text=True, env=os.environ, timeout=300
        )
    finally:
        first.close()
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "storage:" in out.stderr and "PostgreSQL" in out.stderr
    assert all(r.info.status != "RUNNING" for r in _all_runs(MlflowClient()))
    open_shared_study(url, "s", directions=["maximize"]).close()  # the lock is released with its holder


@pytest.mark.slow
def test_rerun_continues_the_study_under_the_same_parent(tracking: str) -> None:
    first = run_sweep(load_config(str(TINY_CONFIG), {"search.n_trials": 2}), SweepOptions(study_name="resume", promote=False))
    second = run_sweep(load_config(str(TINY_CONFIG), {"search.n_trials": 3}), SweepOptions(study_name="resume", promote=False))
    third = run_sweep(load_config(str(TINY_CONFIG), {"search.n_trials": 3}), SweepOptions(study_name="resume", promote=False))

    assert first.parent_run_id == second.parent_run_id == third.parent_run_id
    assert (first.trials_run, second.trials_run, third.trials_run) == (2, 1, 0)
    client = MlflowClient()
    children = _children(client, first.parent_run_id)
    assert sorted(int(c.data.tags["optuna.trial_number"]) for c in children) == [0, 1, 2]
    parent = client.get_run(first.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_complete"] == 3
    worker = client.get_run(second.worker_run_id)
    assert worker.data.tags["mlops.role"] == "sweep-worker" and worker.data.tags["mlops.sweep_parent_run_id"] == first.parent_run_id
    assert worker.data.params["sampler_seed"] != parent.data.params["sampler_seed"], "a resumed sampler must not redraw the same points"
    study = optuna.load_study(study_name="resume", storage=parent.data.params["storage"])
    assert len(study.trials) == 3 and study.user_attrs["mlflow_parent_run_id"] == first.parent_run_id


@pytest.mark.e2e
def test_sigkilled_worker_is_failed_retried_and_resumed(tracking: str, tmp_path: Path) -> None:
    config = _config_file(tmp_path, max_steps=200)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    cmd = _sweep_cmd(config, "--storage", storage, "--study-name", "killed", "--n-trials", "2", "--promote", "false")
    worker = subprocess.Popen(cmd, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and worker.poll() is None:
            try:
                trials = optuna.load_study(study_name="killed", storage=storage).trials
            except KeyError:  # study not created yet
                trials = []
            if trials and trials[0].state.name == "RUNNING" and "mlflow_run_id" in trials[0].user_attrs:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"trial 0 never started: {worker.stderr.read() if worker.stderr else ''}")
        time.sleep(1.0)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=60)
    killed_run = trials[0].user_attrs["mlflow_run_id"]
    client = MlflowClient()
    assert client.get_run(killed_run).info.status == "RUNNING", "SIGKILL gives the worker no chance to end its runs"

    config_obj = load_config(str(config), {"search.n_trials": 2, "training.max_steps": 12})
    result = run_sweep(config_obj, SweepOptions(storage=storage, study_name="killed", promote=False))

    study = optuna.load_study(study_name="killed", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"], states
    assert study.trials[1].system_attrs["failed_trial"] == 0, "trial 1 is Optuna's retry of the killed trial"
    assert study.trials[1].params == study.trials[0].params
    lost = client.get_run(killed_run)
    assert lost.info.status == "FAILED" and lost.data.tags["mlops.retried_by_trial"] == "1"
    assert lost.data.tags["error"].startswith("worker lost: trial 0")
    assert all(r.info.status != "RUNNING" for r in _all_runs(client)), "no run may stay RUNNING"
    children = _children(client, result.parent_run_id)
    assert sorted(c.data.tags["optuna.trial_number"] for c in children) == ["0", "1", "2"]
    retry = next(c for c in children if c.data.tags["optuna.trial_number"] == "1")
    assert retry.data.tags["mlops.retry_of_trial"] == "0" and retry.info.status == "FINISHED"
    assert retry.data.tags[FROM_SCRATCH_TAG].startswith("trial 0 ran another configuration"), "max_steps changed: no resume"
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_complete"] == 2 and parent.data.metrics["n_failed"] == 1


@pytest.mark.e2e
def test_optuna_dashboard_opens_the_sweeps_study(tracking: str, tmp_path: Path) -> None:
    import json
    import shutil
    import urllib.request

    from tests.services import free_port

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config = load_config(str(TINY_CONFIG), {"search.n_trials": 2, "training.max_steps": 2})
    run_sweep(config, SweepOptions(storage=storage, study_name="dash", promote=False))
    dashboard = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    assert dashboard, "optuna-dashboard is a dev dependency"
    port = free_port()
    server = subprocess.Popen([dashboard, storage, "--port", str(port), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.load(response)["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, "optuna-dashboard did not answer"
        summary = next(s for s in studies if s["study_name"] == "dash")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=10) as response:
            detail = json.load(response)
        assert len(detail["trials"]) == 2 and {t["state"] for t in detail["trials"]} == {"Complete"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_worker_that_loses_the_race_to_create_the_experiment_logs_to_it(tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    from mlops.tracking.runs import entry_run

    client = MlflowClient()
    raced = client.create_experiment("raced")  # another worker created it after this one looked it up
    looked_up = TrackingServiceClient.get_experiment_by_name
    lookups: list[str] = []

    def stale_lookup(self: TrackingServiceClient, name: str):  # type: ignore[no-untyped-def]
        lookups.append(name)
        return None if len(lookups) == 1 else looked_up(self, name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", stale_lookup)
    with entry_run("raced", "worker-2") as run, entry_run("raced", "trial", nested=True) as child:
        pass
    assert lookups[:2] == ["raced", "raced"], "the create failed and the experiment was looked up again"
    assert client.get_run(run.info.run_id).info.experiment_id == raced
    assert client.get_run(child.info.run_id).info.experiment_id == raced, "children follow the worker's experiment"
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
