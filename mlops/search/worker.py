"""What a sweep worker sets up once for all the trials it runs: the base model loaded once (each trial adapts its own
copy), MLflow logging that ends a trial's run without waiting, and garbage collection limited to what trials create."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import replace

from mlops.models import ReusedBaseSource
from mlops.tracking import buffer_async_logging
from mlops.train import Prepared


def for_trials(prepared: Prepared) -> Prepared:
    """`prepared` with a base model source that loads once for all the trials of this worker (see `ReusedBaseSource`);
    and MLflow's async logging buffered, so that each trial's run flushes and ends at once."""
    buffer_async_logging()
    if isinstance(prepared.source, ReusedBaseSource):
        return prepared
    return replace(prepared, source=ReusedBaseSource(prepared.source))


@contextlib.contextmanager
def collecting_only_trial_objects() -> Iterator[None]:
    """While trials run, leave what the worker holds for all of them (modules, data) out of garbage collection: the
    collection after each trial, which frees its model, then scans only what trials created."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
