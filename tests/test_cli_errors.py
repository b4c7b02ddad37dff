"""Bad input: one line naming the field or file, exit code 2, no traceback, nothing left RUNNING."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from mlops.cli import main

from .conftest import TINY_CONFIG, write


def _config(tmp_path: Path, **edits: object) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    data["registry"]["policy"] = str(TINY_CONFIG.parent.parent / "registry" / "tiny-detector.yaml")
    for dotted, value in edits.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return write(tmp_path / "config.yaml", yaml.safe_dump(data))


def _data(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


CASES = {
    "malformed_yaml": (lambda t: write(t / "c.yaml", "name: [x\n"), [], r"c.yaml: malformed YAML at line"),
    "unknown_key": (lambda t: _config(t, training__lr=1e-3), [], r"training.lr: unknown key"),
    "lr_not_positive": (lambda t: _config(t), ["--learning-rate", "0"], r"training.learning_rate: must be > 0, got 0.0"),
    "n_trials_zero": (lambda t: _config(t), ["--n-trials", "0"], r"search.n_trials: must be >= 1, got 0"),
    "missing_file": (lambda t: _config(t, dataset__path=str(t / "gone.csv")), [], r"dataset.path: file not found: .*gone.csv"),
    "missing_column": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", b"body,label\na,x\nb,y\n")),
        [],
        r"dataset.text_column: column 'text' not in",
    ),
    "empty_dataset": (lambda t: _config(t, dataset__path=_data(t, "d.csv", b"text,label\n")), [], r"d.csv: dataset is empty"),
    "one_class": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", b"text,label\n" + b"".join(b"t%d,x\n" % i for i in range(30)))),
        [],
        r"only one class \('x'\)",
    ),
    "unknown_model": (
        lambda t: _config(t, model__source="no-such-model"),
        [],
        r"model.source: unknown model 'no-such-model'; available offline: minilm-l6",
    ),
    "non_utf8": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", "text,label\ncaf\xe9,x\nb,y\n".encode("latin-1"))),
        [],
        r"d.csv: not valid UTF-8",
    ),
    "freeze_ratio_one": (lambda t: _config(t, training__freeze_ratio=1.0), [], r"training.freeze_ratio: must be in \[0, 1\)"),
    "prefix_on_classifier": (
        lambda t: _config(t, training__adapter="prefix"),
        [],
        r"training.adapter: PEFT refuses prefix tuning for sequence classifiers",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case: str, tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, extra, pattern = CASES[case]
    path = make(tmp_path)
    command = "finetune" if "--learning-rate" in extra else "sweep"
    assert main([command, "--config", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.search(pattern, err), err
    client = MlflowClient()
    for exp in client.search_experiments():
        assert not client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path / "c.yaml", "name: [x\n")
    out = subprocess.run(
        [sys.executable, "-m", "mlops", "sweep", "--config", str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_gate_failure_exits_2_and_moves_nothing(tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, search__n_trials=1, training__max_steps=2)
    assert main(["sweep", "--config", str(path)]) == 0
    capsys.readouterr()
    assert main(["promote", "--config", str(path), "--to", "production"]) == 2
    err = capsys.readouterr().err
    assert "production gate failed" in err and "alias 'production' not moved" in err
    client = MlflowClient()
    assert client.get_registered_model("tiny-detector").aliases == {"staging": 1}


def test_sigterm_ends_the_run_killed_not_running(tracking: str) -> None:
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "finetune", "--config", str(TINY_CONFIG)], env=os.environ, stderr=subprocess.PIPE, text=True
    )
    client = MlflowClient()
    deadline, runs = time.monotonic() + 120, []
    while not runs and time.monotonic() < deadline and proc.poll() is None:
        runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
        time.sleep(0.2)
    assert runs, "the finetune run never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # main returns 130; on some runs the interpreter then exits by SIGINT (-2) during shutdown, after the runs ended
    assert proc.returncode in (130, -signal.SIGINT) and "stopped; runs in progress were ended KILLED" in err, err[-2000:]
    assert client.get_run(runs[0].info.run_id).info.status == "KILLED"


def test_registry_mistakes_are_one_line_exit_2(tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    MlflowClient().create_registered_model("known")
    policy = "model_name: tiny-detector\naliases:\n  staging:\n    gates: [{metric: %s, min: %s}]\n"
    unknown_metric = write(tmp_path / "p1.yaml", policy % ("test_acc", 0.5))
    out_of_range = write(tmp_path / "p2.yaml", policy % ("test_f1", 1.5))
    cases = [
        (["registry", "history", "nope"], r"no registered model named 'nope'"),
        (["rollback", "nope", "--alias", "production"], r"no registered model named 'nope'"),
        (["reproduce", "models:/nope/1"], r"no registered model named 'nope'"),
        (["promote", "--config", str(_config(tmp_path / "a")), "--to", "canary"], r"no gates for alias 'canary'; policy defines: staging"),
        (["reproduce", "models:/known@champion"], r"known: no alias 'champion' \(aliases: none\)"),
        (["rollback", "known", "--alias", "production"], r"known: no version holds 'production' .*nothing to roll back"),
        (["promote", "--config", str(_config(tmp_path / "b", registry__policy=str(unknown_metric)))], r"metric: unknown metric 'test_acc'"),
        (
            ["promote", "--config", str(_config(tmp_path / "c", registry__policy=str(out_of_range)))],
            r"gates\[0\]\.min: 1\.5 is outside the range of test_f1 \[0\.0, 1\.0\]",
        ),
    ]
    capsys.readouterr()  # the store's creation log
    for argv, pattern in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(pattern, err), (argv, err)
    client = MlflowClient()
    assert client.get_registered_model("known").aliases == {} and not client.search_model_versions("name='tiny-detector'")
    for exp in client.search_experiments():
        assert not client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
