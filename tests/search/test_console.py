"""The sweep console: a live display in a terminal, one plain line per event elsewhere, the libraries' noise off unless
`--verbose`; the events counted and the ETA computed from trials built in code."""

from __future__ import annotations

import datetime
import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from mlops.search import PlainConsole, SweepInfo
from tests.helpers import ROOT, TESTS, TINY_CONFIG, write

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
INFO = SweepInfo("sweep-tiny", "tiny-1", 4, "eval_f1", "maximize", "parent123", "1", "sqlite:////tmp/x/mlflow.db")


def _config(tmp_path: Path, n_trials: int) -> Path:
    """The tiny config with 6 steps per trial, a loss logged every 2 steps, and its test policy."""
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["registry"]["policy"] = str(TESTS / "registry" / f"{data['registry']['policy']}.yaml")
    data["training"] |= {"max_steps": 6, "logging_steps": 2}
    data["search"]["n_trials"] = n_trials
    return write(tmp_path / "config.yaml", yaml.safe_dump(data))


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(inherited, None)
    return env


def _in_terminal(argv: list[str], cwd: Path, timeout: float = 600) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal of 120 x 40 as its stdin, stdout and stderr; (exit code, everything written)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env={**_env(), "TERM": "xterm-256color"})
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.e2e
def test_terminal_shows_one_live_display(tracking: str, tmp_path: Path) -> None:
    config = _config(tmp_path, n_trials=2)
    code, raw = _in_terminal([sys.executable, "-m", "mlops", "sweep", "--config", str(config), "--promote", "false"], tmp_path)
    screen = ANSI.sub("", raw)
    assert code == 0, screen[-3000:]
    assert "\x1b[" in raw, "a terminal gets a live display (cursor movement and colours)"
    assert re.search(r"trials\s+1/2 finished, 0 pruned, 0 failed, 0 infeasible", screen)
    assert re.search(r"trials\s+2/2 finished", screen)
    assert re.search(r"training, epoch 1/1, step [1-6]/6", screen), "the running trial's step progress"
    assert re.search(r"latest\s+eval_f1=0\.\d{4} after epoch 1", screen)
    assert re.search(r"ETA \d+:\d\d:\d\d", screen), "an ETA once a trial has finished"
    best = re.findall(r"best\s+trial (\d): eval_f1=(0\.\d{4}) \(learning_rate=[0-9.e-]+, lora_r=\d\)", screen)
    assert best, "the best trial so far, with its metric and parameters"
    assert re.search(r"trial 1 complete: eval_f1=0\.\d{4} in [\d.]+ s; 2/2 finished", screen), "each outcome stays in the scrollback"
    assert "{'loss'" not in screen and "it/s]" not in screen, "no Trainer log dicts or tqdm bars"

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert re.search(rf"parent run\s+{parent.info.run_id}", screen)
    hint = f"open it with: mlflow ui --backend-store-uri {tracking}, then http://127.0.0.1:5000/#/experiments/"
    assert f"parent run {parent.info.run_id}; {hint}" in screen.replace("\r\n", "")
    assert re.search(r"open\s+mlflow ui --backend-store-uri", screen)  # in the display too, where a long path wraps
    assert float(best[-1][1]) == pytest.approx(parent.data.metrics["best_eval_f1"], abs=5e-5)
    assert int(best[-1][0]) == parent.data.metrics["best_trial_number"]


@pytest.mark.e2e
def test_not_a_terminal_gets_plain_event_lines(tracking: str, tmp_path: Path) -> None:
    config = _config(tmp_path, n_trials=2)
    argv = [sys.executable, "-m", "mlops", "sweep", "--config", str(config)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for stream in (out.stdout, out.stderr):
        assert "\x1b" not in stream and "\r" not in stream, "no control codes"
        assert "{'loss'" not in stream and "{'eval_loss'" not in stream
    assert "Warning" not in out.stderr, out.stderr  # no library warning the user cannot act on
    lines = out.stdout.splitlines()

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    trials = {int(r.data.params["trial_number"]): r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert lines[0].startswith(f"sweep-tiny: study '{parent.data.params['study_name']}', 2 trials")
    page = f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}?workflowType=machine_learning"
    assert f"parent run {parent.info.run_id}; open it with: mlflow ui --backend-store-uri {tracking}, then {page}" in lines[0]
    for number, run in trials.items():
        params = f"learning_rate={float(run.data.params['learning_rate']):.3g}, lora_r={run.data.params['lora_r']}"
        f1 = run.data.metrics["eval_f1"]
        assert f"trial {number} started: {params}" in lines
        assert f"trial {number} epoch 1: eval_f1={f1:.4f}" in lines
        finished = rf"trial {number} complete: eval_f1={f1:.4f} in [\d.]+ s; {number + 1}/2 finished, .*ETA \d+:\d\d:\d\d"
        assert any(re.fullmatch(finished, x) for x in lines)
    assert any(x.startswith("new best: trial 0: eval_f1=") for x in lines)
    header = next(i for i, x in enumerate(lines) if x.split() == ["trial", "state", "eval_f1", "learning_rate", "lora_r", "duration"])
    assert [x.split()[:2] for x in lines[header + 1 : header + 3]] == [["0", "complete"], ["1", "complete"]]
    assert "staging gate passed" in lines[-5], "the registry outcome comes after the table, then the UI links"
    experiment = f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}"
    assert lines[-4:-1] == [
        f"runs:    {experiment}/runs?workflowType=machine_learning",
        f"run:     {experiment}/runs/{parent.info.run_id}?workflowType=machine_learning",
        "model:   http://127.0.0.1:5000/#/models/tiny-detector/versions/1?workflowType=machine_learning",
    ]
    assert lines[-1] == f"(start the UI first: mlflow ui --backend-store-uri {tracking})"
    note = parent.data.tags["mlflow.note.content"]  # the parent run's description in the UI
    assert f"best trial {int(parent.data.metrics['best_trial_number'])} " in note and "registered as tiny-detector v1" in note
    report = Path(client.download_artifacts(parent.info.run_id, "sweep_report.md", str(tmp_path))).read_text()
    assert f"- run:     {experiment}/runs/{parent.info.run_id}?workflowType=machine_learning" in report
    tags = client.get_experiment(parent.info.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development" and "parent run" in tags["mlflow.note.content"]


@pytest.mark.e2e
def test_verbose_brings_back_the_trainer_logs(tracking: str, tmp_path: Path) -> None:
    config = _config(tmp_path, n_trials=1)
    argv = [sys.executable, "-m", "mlops", "sweep", "--config", str(config), "--promote", "false", "--verbose", "true"]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("{'loss'") == 3, "Trainer's dict every 2 of 6 steps"
    assert "trial 0 complete" in out.stdout, "the event lines stay"


def test_quiet_output_turns_off_the_libraries_progress_bars() -> None:
    """Bars such as transformers' "Loading weights" (a model loaded from a directory) print carriage returns."""
    probe = (
        "from mlops.output import configure_output; configure_output(); "
        "from transformers.utils import logging; import datasets; "
        "print(logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled())"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("DISABLE_PROGRESS_BARS")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def _trial(number: int, state: str, value: float | None = None, seconds: float = 10.0, **attrs: object) -> optuna.trial.FrozenTrial:
    start = datetime.datetime(2026, 1, 1)
    return optuna.trial.FrozenTrial(
        number=number,
        state=optuna.trial.TrialState[state],
        value=value,
        datetime_start=start,
        datetime_complete=start + datetime.timedelta(seconds=seconds),
        params={"lora_r": 4 * (number + 1)},
        distributions={"lora_r": optuna.distributions.CategoricalDistribution([4, 8, 12, 16, 20])},
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={1: 0.5} if state == "PRUNED" else {},
        trial_id=number,
    )


def test_plain_console_counts_what_other_workers_finished() -> None:
    stream = io.StringIO()
    console = PlainConsole(stream)
    console.sweep_started(INFO, [_trial(0, "RUNNING")])  # another worker's trial, running when this one joined
    console.trial_started(1, {"lora_r": 8})
    mine = _trial(1, "COMPLETE", 0.70, seconds=20)
    study = [_trial(0, "COMPLETE", 0.80, seconds=30), mine, _trial(2, "PRUNED", seconds=10), _trial(3, "RUNNING")]
    console.trial_finished(mine, study)
    console.trial_started(4, {"lora_r": 20})
    later = _trial(4, "COMPLETE", 0.60, seconds=20)
    console.trial_finished(later, [*study, later])  # nothing new from the others: nothing counted twice
    lines = stream.getvalue().splitlines()
    assert "0 finished before" in lines[0]
    assert lines[2].startswith("trial 0 (another worker) complete: eval_f1=0.8000 in 30.0 s; 1/4 finished")
    assert lines[3] == "new best: trial 0: eval_f1=0.8000 (lora_r=4)"
    assert lines[4].startswith("trial 2 (another worker) pruned after epoch 1 in 10.0 s; 2/4 finished, 1 pruned")
    assert lines[5].startswith("trial 1 complete: eval_f1=0.7000 in 20.0 s; 3/4 finished, 1 pruned"), "0.70 is no new best"
    assert lines[5].endswith("ETA 0:00:10"), "1 trial left at the mean 20 s, shared by 2 workers (trial 3 is running)"
    assert lines[7].startswith("trial 4 complete: eval_f1=0.6000 in 20.0 s; 4/4 finished, 1 pruned") and len(lines) == 8


def test_plain_console_counts_outcomes_and_estimates_what_is_left() -> None:
    stream = io.StringIO()
    console = PlainConsole(stream)
    console.sweep_started(INFO, [_trial(0, "COMPLETE", 0.70, seconds=30)])  # a resumed study: one trial done before
    console.trial_started(1, {"lora_r": 8})
    console.trial_epoch(1, 1, 0.5)
    console.trial_finished(_trial(1, "PRUNED", seconds=10))
    console.trial_finished(_trial(2, "FAIL", seconds=20, fail_reason="RuntimeError: out of memory", **{"mlops.infeasible": "true"}))
    console.trial_finished(_trial(3, "COMPLETE", 0.80, seconds=20))
    console.trial_finished(_trial(4, "COMPLETE", 0.75, seconds=20))
    lines = stream.getvalue().splitlines()
    assert "1 finished before" in lines[0] and "parent run parent123" in lines[0]
    assert lines[1:3] == ["trial 1 started: lora_r=8", "trial 1 epoch 1: eval_f1=0.5000"]
    assert lines[3].startswith("trial 1 pruned after epoch 1 in 10.0 s; 2/4 finished, 1 pruned, 0 failed, 0 infeasible")
    # ETA: the mean of the finished trials (30 and 10 s) for the 2 trials left
    assert lines[3].endswith("ETA 0:00:40")
    assert lines[4].startswith("trial 2 failed: RuntimeError: out of memory in 20.0 s; 3/4 finished, 1 pruned, 1 failed, 1 infeasible")
    assert lines[5].startswith("trial 3 complete: eval_f1=0.8000 in 20.0 s; 4/4 finished") and lines[5].endswith("ETA 0:00:00")
    assert lines[6] == "new best: trial 3: eval_f1=0.8000 (lora_r=16)"
    assert lines[7].startswith("trial 4 complete: eval_f1=0.7500") and len(lines) == 8, "0.75 is no new best"
    console.sweep_finished([_trial(n, s, v) for n, s, v in ((0, "COMPLETE", 0.7), (1, "PRUNED", None), (3, "COMPLETE", 0.8))])
    summary, *table = stream.getvalue().splitlines()[8:]
    # counted over the study's trials as given at the end, not over the events seen
    assert summary.startswith("sweep-tiny: 3/4 finished, 1 pruned, 0 failed, 0 infeasible; best trial 3: eval_f1=0.8000 (lora_r=16)")
    assert table[0].split() == ["trial", "state", "eval_f1", "lora_r", "duration"]
    assert [row.split() for row in table[1:]] == [
        ["0", "complete", "0.7000", "4", "0:00:10"],
        ["1", "pruned", "-", "8", "0:00:10"],
        ["3", "complete", "0.8000", "16", "0:00:10"],
    ]
