"""Timing maths for the serving cost, as plain functions: time a predict call per input at batch 1 (one model, or
several side by side, interleaved so that drift of the machine falls on all of them alike), the latency
percentiles, and rates. What is timed is the caller's: `mlops.train.cost` passes the served model's predict."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from mlops.tasks import INFER_LATENCY_P50, INFER_LATENCY_P95


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) with linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be in [0, 100], got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_side_by_side(
    predicts: Sequence[Callable[[Any], Any]], inputs: Sequence[Any], warmup: int = 2, repeats: int = 1
) -> list[list[float]]:
    """Seconds of each call `predict(item)`, per predict: first `warmup` untimed calls of each on the first input,
    then `repeats` passes over `inputs`, in which every input goes to all predicts in turn, the order rotating from
    one input to the next. One list of len(inputs) x repeats timings per predict."""
    if not inputs:
        return [[] for _ in predicts]
    for predict in predicts:
        for _ in range(warmup):
            predict(inputs[0])
    timings: list[list[float]] = [[] for _ in predicts]
    turn = 0
    for _ in range(repeats):
        for item in inputs:
            for k in range(len(predicts)):
                index = (turn + k) % len(predicts)
                start = time.perf_counter()
                predicts[index](item)
                timings[index].append(time.perf_counter() - start)
            turn += 1
    return timings


def time_each(predict: Callable[[Any], Any], inputs: Sequence[Any], warmup: int = 2, repeats: int = 1) -> list[float]:
    """Seconds of each call `predict(item)` after `warmup` untimed calls: len(inputs) x repeats timings."""
    return time_side_by_side([predict], inputs, warmup, repeats)[0]


def latency_metrics(seconds: Sequence[float]) -> dict[str, float]:
    """The median and 95th percentile of per-call timings, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {INFER_LATENCY_P50: percentile(ms, 50), INFER_LATENCY_P95: percentile(ms, 95)}


def rate(count: float, seconds: float) -> float:
    """`count` per second over `seconds` (a pass too quick for the clock counts as a microsecond)."""
    return count / max(seconds, 1e-6)
