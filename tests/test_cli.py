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
from tests.helpers import TESTS, TINY_CONFIG, TINY_SUMMARIZER, isolated_store, mlflow_run, write


def _config(tmp_path: Path, base: Path = TINY_CONFIG, **edits: object) -> Path:
    """The tiny test config `base` (with its test policy), `key__subkey=value` edits applied, written to `tmp_path`."""
    data = yaml.safe_load(base.read_text())
    data["registry"]["policy"] = str(TESTS / "registry" / f"{data['registry']['policy']}.yaml")
    for dotted, value in edits.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return write(tmp_path / "config.yaml", yaml.safe_dump(data))


def _summarizer_config(tmp_path: Path, **edits: object) -> Path:
    return _config(tmp_path, TINY_SUMMARIZER, **edits)


def _summarizer_csv(tmp_path: Path, content: bytes) -> Path:
    path = _data(tmp_path, "d.csv", content)
    return _summarizer_config(tmp_path, dataset__path=path, dataset__max_samples=None, dataset__key_terms_column=None)


def _rows(n: int, label: object = None, every: int = 0, text: str = "message {i} about the account", fmt: str = "csv") -> bytes:
    """`n` rows of two balanced classes; every `every`-th row gets `label` instead (None: an empty cell)."""
    rows = []
    for i in range(n):
        value = ("fraud" if i % 2 else "ok") if not every or i % every else label
        rows.append((text.format(i=i), value))
    if fmt == "jsonl":
        import json

        return "".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in rows).encode()
    return ("text,label\n" + "".join(f"{t},{'' if v is None else v}\n" for t, v in rows)).encode()


def _pairs(n: int, missing_every: int = 0) -> bytes:
    lines = ["document,summary"]
    for i in range(n):
        summary = "" if missing_every and i % missing_every == 0 else f"Party {i} pays on day {i}."
        lines.append(f"The tenant number {i} shall pay the landlord on day {i} of each month.,{summary}")
    return ("\n".join(lines) + "\n").encode()


def _parquet(tmp_path: Path) -> str:
    import pandas as pd

    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": list(range(200)), "label": ["fraud" if i % 2 else "ok" for i in range(200)]}).to_parquet(path)
    return str(path)


def _policy(tmp_path: Path, text: str) -> str:
    return str(write(tmp_path / "policy.yaml", "model_name: tiny-detector\naliases:\n  staging:\n" + text))


def _data(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


CASES = {
    "malformed_yaml": (lambda t: write(t / "c.yaml", "name: [x\n"), [], r"c.yaml: malformed YAML at line"),
    "key_given_twice": (
        lambda t: write(t / "c.yaml", _config(t).read_text().replace("\ntraining:\n", "\ntraining:\n  epochs: 3\n", 1)),
        [],
        r"c.yaml: training.epochs: key given twice \(lines \d+ and \d+\)$",
    ),
    "policy_key_given_twice": (
        lambda t: _config(t, registry__policy=_policy(t, "    gates: [{metric: test_f1, min: 0.5}]\n    gates: []\n")),
        [],
        r"policy.yaml: aliases.staging.gates: key given twice \(lines 4 and 5\)$",
    ),
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
    # the data contract
    "missing_labels": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", _rows(200, None, every=50))),
        [],
        r"dataset.label_column: 4 rows of .*d.csv \(before splitting\) have no label in column 'label': rows 1, 51, 101, 151; "
        r"fix them, or set dataset.on_invalid.missing_target: drop",
    ),
    "label_column_all_empty": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", _rows(200, None, every=1))),
        [],
        r"dataset.label_column: 200 rows of .*d.csv \(before splitting\) have no label in column 'label': rows 1, 2, 3, 4, 5 and 195 more",
    ),
    "six_rows": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", _rows(6))),
        [],
        r"dataset.min_split_examples: .*d.csv has 6 usable rows, so its validation split would hold 0 examples, fewer than 20",
    ),
    "rare_class": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", _rows(400, "rare", every=100))),
        [],
        r"dataset.min_examples_per_class: class 'rare' has \d example",
    ),
    "empty_text_refused": (
        lambda t: _config(t, dataset__path=_data(t, "d.csv", _rows(200) + b",ok\n"), dataset__on_invalid={"empty_input": "error"}),
        [],
        r"dataset.text_column: 1 row of .*d.csv \(before splitting\) has an empty text in column 'text': row 201",
    ),
    "jsonl_malformed_line": (
        lambda t: _config(t, dataset__path=_data(t, "d.jsonl", _rows(3, fmt="jsonl") + b'{"text": "x", "label": \n')),
        [],
        r"d.jsonl: line 4 is not valid JSON",
    ),
    "parquet_wrong_types": (
        lambda t: _config(t, dataset__path=_parquet(t)),
        [],
        r"dataset.text_column: column 'text' of .*d.parquet holds int\d* values, not text \(rows 1, 2, 3, 4, 5 and 195 more\)",
    ),
    "on_invalid_unknown_action": (
        lambda t: _config(t, dataset__on_invalid={"missing_target": "ignore"}),
        [],
        r"dataset.on_invalid.missing_target: must be one of 'error', 'drop', got 'ignore'",
    ),
    "min_split_examples_zero": (
        lambda t: _config(t, dataset__min_split_examples=0),
        [],
        r"dataset.min_split_examples: must be >= 1, got 0",
    ),
    "summary_missing": (
        lambda t: _summarizer_config(
            t, dataset__path=_data(t, "d.csv", _pairs(120, missing_every=40)), dataset__max_samples=None, dataset__key_terms_column=None
        ),
        [],
        r"dataset.summary_column: 3 rows of .*d.csv \(before splitting\) have no summary in column 'summary': rows 1, 41, 81",
    ),
    "summaries_too_few": (
        lambda t: _summarizer_config(
            t, dataset__path=_data(t, "d.csv", _pairs(30)), dataset__max_samples=None, dataset__key_terms_column=None
        ),
        [],
        r"dataset.min_split_examples: .*d.csv has 30 usable rows, so its validation split would hold 4 examples, fewer than 20",
    ),
    "policy_metric_the_task_never_logs": (
        lambda t: _summarizer_config(t, registry__policy=_policy(t, "    gates: [{metric: test_f1, min: 0.5}]\n")),
        [],
        r"aliases.staging.gates\[0\].metric: test_f1 is never logged by summarization; use one of .*test_rougeL",
    ),
    "policy_min_examples_zero": (
        lambda t: _config(t, registry__policy=_policy(t, "    min_examples: 0\n    gates: [{metric: test_f1, min: 0.5}]\n")),
        [],
        r"aliases.staging.min_examples: must be >= 1, got 0",
    ),
    "policy_baseline_on_loss": (
        lambda t: _config(t, registry__policy=_policy(t, "    gates: [{metric: test_loss, max: 1.0, beat_baseline: true}]\n")),
        [],
        r"aliases.staging.gates\[0\].beat_baseline: test_loss has no baseline to beat",
    ),
    "policy_lower_bound_without_scores": (
        lambda t: _config(t, registry__policy=_policy(t, "    gates: [{metric: eval_f1, min: 0.5, on: lower_bound}]\n")),
        [],
        r"aliases.staging.gates\[0\].on: lower_bound needs per-example scores to resample, which eval_f1 lacks",
    ),
    "sampler_unknown": (lambda t: _config(t), ["--sampler", "bayes"], r"search.sampler: must be one of 'tpe', 'random', 'grid'"),
    "seed_negative": (lambda t: _config(t), ["--seed", "-1"], r"training.seed: must be >= 0, got -1"),
    "seeds_per_trial_zero": (lambda t: _config(t), ["--seeds-per-trial", "0"], r"search.seeds_per_trial: must be >= 1, got 0"),
    "confirm_more_than_trials": (
        lambda t: _config(t),
        ["--confirm-top-k", "4", "--n-trials", "3"],
        r"search.confirm_top_k: cannot confirm more trials than n_trials \(3\), got 4",
    ),
    "confirm_more_than_the_grid": (
        lambda t: _config(t),
        ["--confirm-top-k", "5", "--n-trials", "6", "--sampler", "grid"],
        r"search.confirm_top_k: cannot confirm 5 trials when the search runs 4",
    ),
    "confirm_seeds_zero": (lambda t: _config(t, search__confirm_seeds=0), [], r"search.confirm_seeds: must be >= 1, got 0"),
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
    _nothing_changed()


def _nothing_changed() -> None:
    """No run left RUNNING, no version registered, no alias moved: read back through MlflowClient."""
    client = MlflowClient()
    for exp in client.search_experiments():
        assert not client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'")
    assert not client.search_model_versions()
    assert all(not model.aliases for model in client.search_registered_models())


@pytest.mark.e2e
def test_mlproject_value_that_is_not_a_number(tmp_path: Path) -> None:
    """`-P n_trials=abc` under `mlflow run`: the entry point fails with the one-line error, and its run ends FAILED."""
    with isolated_store(tmp_path):
        out = mlflow_run(tmp_path, "n_trials=abc", "config=" + str(TINY_CONFIG))
        assert out.returncode != 0
        assert "mlops sweep: error: " in out.stderr and "search.n_trials: expected an integer, got 'abc'" in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr.split("mlops sweep: error:")[0][-2000:]
        client = MlflowClient()
        runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
        assert runs and all(r.info.status == "FAILED" for r in runs)
        _nothing_changed()


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path / "c.yaml", "name: [x\n")
    out = subprocess.run(
        [sys.executable, "-m", "mlops", "sweep", "--config", str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_gate_failure_exits_2_and_moves_nothing(tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, search__n_trials=1, training__max_steps=2)
    assert main(["sweep", "--config", str(path)]) == 0
    capsys.readouterr()
    assert main(["promote", "--config", str(path), "--to", "production"]) == 2
    err = capsys.readouterr().err
    assert "production gate failed" in err and "alias 'production' not moved" in err
    client = MlflowClient()
    assert client.get_registered_model("tiny-detector").aliases == {"staging": 1}


@pytest.mark.slow
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
