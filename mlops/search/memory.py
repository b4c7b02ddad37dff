"""Memory-aware trials: running out of device memory (`torch.OutOfMemoryError`) never ends a sweep, and every trial
hands its memory back before the next one starts.

`search.on_oom` decides what an out-of-memory trial does. `halve_batch` (the default) retries it in the same run
with half the per-device batch and twice the gradient accumulation, so that the effective batch stays the same, down
to batch 1; `prune`, or running out again at batch 1, prunes it, its run tagged `mlops.infeasible` with the peak
memory it reached.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from mlops.tracking import INFEASIBLE_TAG, OOM_HALVING_TAG, log_params_effective
from mlops.train import peak_memory_gib, pick_device, release_memory, reset_peak_memory

if TYPE_CHECKING:
    from mlops.config import ExperimentConfig

logger = logging.getLogger(__name__)

# What a retry changes; logged as params once more (`<name>_effective`) when the trial completes with them.
_BATCH_PARAMS = ("batch_size", "gradient_accumulation_steps")

Result = TypeVar("Result")


@dataclass(frozen=True)
class _OutOfMemory:
    message: str
    peak_gib: float


def smaller_batch(batch_size: int) -> int:
    """Half the batch, or the largest divisor of it below half (an odd batch), so that the accumulation steps
    grow by a whole factor and the effective batch stays the same; 1 stays 1."""
    return max(d for d in range(1, batch_size // 2 + 1) if batch_size % d == 0) if batch_size > 1 else 1


def train_within_memory(config: ExperimentConfig, train: Callable[[ExperimentConfig, Collection[str]], Result]) -> Result:
    """`train(config, omitted params)` under the active (trial) run, following `config.search.on_oom` when it runs
    out of memory; raises `optuna.TrialPruned` when the trial cannot fit.

    A retry trains from scratch in the same run: its params are not logged again (MLflow params cannot change), the
    batch it trains with is in a `mlops.oom_halving.<n>` tag, and `batch_size_effective` /
    `gradient_accumulation_steps_effective` params once it completes.
    """
    import mlflow
    import optuna

    hp = config.training
    device, _ = pick_device(hp.device)
    halvings = 0
    while True:
        reset_peak_memory(device)
        outcome = _attempt(train, config, _BATCH_PARAMS if halvings else (), device)
        if not isinstance(outcome, _OutOfMemory):
            if halvings:
                log_params_effective({"batch_size": hp.batch_size, "gradient_accumulation_steps": hp.gradient_accumulation_steps})
            return outcome
        release_memory()  # the failed attempt's model, optimizer and activations, before the next one is built
        where = f"batch_size {hp.batch_size} x gradient_accumulation_steps {hp.gradient_accumulation_steps}"
        if config.search.on_oom == "prune" or hp.batch_size == 1:
            reason = f"out of memory at {where}; peak {outcome.peak_gib:.2f} GiB on {device}: {outcome.message}"
            mlflow.set_tag(INFEASIBLE_TAG, reason[:4000])
            raise optuna.TrialPruned(reason[:1000])
        smaller = smaller_batch(hp.batch_size)
        accumulation = hp.gradient_accumulation_steps * (hp.batch_size // smaller)
        halvings += 1
        mlflow.set_tag(
            f"{OOM_HALVING_TAG}.{halvings}",
            f"batch_size {hp.batch_size} -> {smaller}, gradient_accumulation_steps {hp.gradient_accumulation_steps} -> {accumulation} "
            f"(out of memory, peak {outcome.peak_gib:.2f} GiB on {device})",
        )
        logger.warning("trial out of memory at %s; retrying with batch_size %d", where, smaller)
        config = config.with_params({"batch_size": smaller, "gradient_accumulation_steps": accumulation})
        hp = config.training


def _attempt(
    train: Callable[[ExperimentConfig, Collection[str]], Result], config: ExperimentConfig, omit: Collection[str], device: str
) -> Result | _OutOfMemory:
    """One try; an out-of-memory error comes back as a value, its traceback cleared so that no frame of the failed
    attempt (which holds the model) outlives it."""
    import torch

    try:
        return train(config, omit)
    except torch.OutOfMemoryError as exc:
        traceback.clear_frames(exc.__traceback__)
        return _OutOfMemory(str(exc).splitlines()[0] if str(exc) else "torch.OutOfMemoryError", peak_memory_gib(device))
