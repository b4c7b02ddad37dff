"""Shared fixtures: an isolated tracking store per test, PostgreSQL and the tracking stack; the `slow` marker on the
tests that need a service, a subprocess or many trainings. Shared plain helpers live in tests/helpers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import isolated_store

if TYPE_CHECKING:
    from tests.services import Stack

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

# Markers that make a test slow whatever it does; `-m "not slow"` then also leaves out the GPU tests, which the
# command line's `-m` no longer deselects through addopts' `-m 'not gpu'`.
IMPLIES_SLOW = ("e2e", "postgres", "stack", "distributed", "gpu")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in IMPLIES_SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite tracking store in a temporary working directory; no run left active."""
    with isolated_store(tmp_path) as uri:
        yield uri


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session (databases `optuna` and `mlflow`)."""
    from tests.services import postgres

    with postgres(databases=("optuna", "mlflow", "scratch")) as url:
        yield url


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The tracking stack with basic auth for the whole session, started by `scripts/stack up --auth` on free ports
    and stopped at the end; or one already running whose env file $MLOPS_STACK_ENV names (then left running)."""
    from tests.services import Stack, stack

    reuse = os.environ.get("MLOPS_STACK_ENV")
    if reuse:
        yield Stack.from_env_file(Path(reuse))
        return
    with stack(auth=True) as running:
        yield running
