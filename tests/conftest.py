"""Shared fixtures: an isolated tracking store per test, the tiny test config, PostgreSQL and the tracking stack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .services import Stack

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TINY_CONFIG = TESTS / "configs" / "tiny.yaml"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@contextmanager
def isolated_store(folder: Path) -> Iterator[str]:
    """A SQLite tracking store in `folder`, which is also the working directory (per test: `tracking`; module-scoped
    fixtures call it directly); no run left active and no experiment leaked afterwards."""
    import mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield uri
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        for leaked in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # set_experiment exports the active experiment
            os.environ.pop(leaked, None)


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite tracking store in a temporary working directory; no run left active."""
    with isolated_store(tmp_path) as uri:
        yield uri


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (databases `optuna` and `mlflow`)."""
    from .services import postgres

    with postgres(databases=("optuna", "mlflow", "scratch")) as url:
        yield url


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The tracking stack with basic auth for the whole session, started by `scripts/stack up --auth` on free ports
    and stopped at the end; or one already running whose env file $MLOPS_STACK_ENV names (then left running)."""
    from .services import Stack, stack

    reuse = os.environ.get("MLOPS_STACK_ENV")
    if reuse:
        yield Stack.from_env_file(Path(reuse))
        return
    with stack(auth=True) as running:
        yield running
