"""What the tests share, imported from here and never from another test file: the paths of the repository and of the
test data, a file writer, an isolated tracking store, `mlflow run` and `mlflow models serve` in a subprocess, and
per-example scores for gates."""

from __future__ import annotations

import atexit
import csv
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlops.evaluate import PerExampleScores
    from mlops.registry import Compare, PromotionPolicy

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TINY_CONFIG = TESTS / "configs" / "tiny.yaml"
TINY_SUMMARIZER = TESTS / "configs" / "tiny-summarizer.yaml"
LEGAL = ROOT / "mlops" / "data" / "demo" / "legal"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def legal_rows(split: str = "validation", n: int = 6) -> list[dict[str, str]]:
    """The first `n` rows of a split of the packaged legal summarisation data."""
    with (LEGAL / f"{split}.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))[:n]


@functools.cache
def _empty_store() -> Path:
    """This process's migrated, empty MLflow SQLite store, made once (removed at exit)."""
    import tempfile

    from mlflow import MlflowClient

    folder = tempfile.mkdtemp(prefix="mlops-tests-store-")
    atexit.register(shutil.rmtree, folder, True)
    template = Path(folder) / "mlflow.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()  # create and migrate
    return template


def empty_tracking_db(path: Path) -> Path:
    """An empty MLflow SQLite store at `path` (unless one is there), as MLflow would make it with `path`'s folder as the
    working directory: a copy of one made in this process. MLflow creates and migrates a new store's schema in over a
    second, which hundreds of tests would each pay; the copy takes milliseconds. Only the Default experiment's
    artifact location, fixed when a store is made, is set to where MLflow would have put it."""
    import sqlite3

    if not path.exists():
        shutil.copyfile(_empty_store(), path)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (str(path.parent / "mlruns" / "0"),))
        db.close()
    return path


@contextmanager
def isolated_store(folder: Path, uri: str | None = None) -> Iterator[str]:
    """A SQLite tracking store in `folder` (or the tracking server at `uri`), `folder` being the working directory (per
    test: the `tracking` fixture; module-scoped fixtures call it directly); no run left active and no experiment leaked
    afterwards."""
    import mlflow

    uri = uri or f"sqlite:///{empty_tracking_db(folder / 'mlflow.db')}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        _forget_active_experiment()
        yield uri
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        for leaked in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # set_experiment exports the active experiment
            os.environ.pop(leaked, None)
        _forget_active_experiment()


def _forget_active_experiment() -> None:
    """MLflow keeps the experiment `set_experiment` chose in a module global, which outlives the store it belongs to:
    a later test in the same process would log to an experiment id its own store does not have."""
    import mlflow.tracking.fluent

    mlflow.tracking.fluent._active_experiment_id = None


def mlflow_run(tmp_path: Path, *params: str, entry_point: str = "sweep") -> subprocess.CompletedProcess[str]:
    """`mlflow run` of this project's `entry_point` with `-P` `params`, tracked in `tmp_path/mlflow.db` (experiment
    `e2e`), from `tmp_path`, with this Python's scripts first on PATH and no run inherited."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{empty_tracking_db(tmp_path / 'mlflow.db')}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(inherited, None)
    mlflow = shutil.which("mlflow", path=env["PATH"])
    assert mlflow, "the mlflow CLI must be installed beside this Python"
    args = [mlflow, "run", str(ROOT), "-e", entry_point, "--env-manager", "local", "--experiment-name", "e2e"]
    for p in params:
        args += ["-P", p]
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answers(process: subprocess.Popen[Any], url: str, what: str, timeout: float = 120) -> None:
    """Poll `url` until it answers HTTP 200; fail the test, with the end of the process's stderr where it was piped and
    after killing the process, when it exits or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            detail = process.stderr.read()[-3000:] if process.stderr else ""
            pytest.fail(f"{what} did not answer {url} within {timeout:.0f} s {detail}")
        time.sleep(0.5)


@contextmanager
def served(model_uri: str) -> Iterator[str]:
    """`mlflow models serve` of `model_uri` (local environment, one worker) in a subprocess, from the current
    tracking store, with this Python's scripts (uvicorn) first on PATH; yields its base URL once it answers /ping and
    stops it afterwards."""
    port = _free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(server, f"{url}/ping", "mlflow models serve", 180)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def invoke(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST `payload` to a served model's /invocations: the HTTP status and the JSON answer (errors included)."""
    request = urllib.request.Request(f"{url}/invocations", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- per-example scores for gates: 300 examples, a champion right on 70 % of them ---------------------------------------

N = 300
LABELS = [i % 2 for i in range(N)]


def scores_with(correct: set[int], digest: str = "d0") -> PerExampleScores:
    from mlops.evaluate import PerExampleScores

    predictions = [y if i in correct else 1 - y for i, y in enumerate(LABELS)]
    return PerExampleScores("classification", digest, [f"id{i}" for i in range(N)], LABELS, predictions, ["legit", "fraud"])


CHAMPION = set(range(210))  # 70 % right
CLEARLY_BETTER = set(range(270))  # 90 % right: fixes 60 of the champion's errors, breaks none
MARGINALLY_BETTER = (CHAMPION - set(range(7))) | set(range(210, 220))  # fixes 10, breaks 7: 71 %


def policy_for(model: str = "m", compare: Compare | None = None) -> PromotionPolicy:
    from mlops.registry import AliasPolicy, Gate, PromotionPolicy

    return PromotionPolicy(
        model_name=model,
        aliases={
            "staging": AliasPolicy([Gate("test_f1", min=0.5)]),
            "production": AliasPolicy([Gate("test_f1", min=0.6)], compare=compare, candidate_from="staging"),
        },
    )
