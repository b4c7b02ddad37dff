"""The timing maths of the serving cost: percentiles as numpy computes them, per-call timings after a warm-up, and
several predicts timed side by side in rotating order."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlops.evaluate import latency_metrics, percentile, rate, time_each, time_side_by_side


def test_percentile_matches_numpy_and_refuses_nonsense() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.5, 2.0, 11.0]
    for q in (0, 5, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_latency_metrics_are_milliseconds_of_the_median_and_95th_percentile() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    metrics = latency_metrics(seconds)
    assert metrics["infer_latency_ms_p50"] == pytest.approx(50.5)
    assert metrics["infer_latency_ms_p95"] == pytest.approx(95.05)
    assert rate(64, 0.5) == 128.0 and rate(3, 0.0) == pytest.approx(3e6)


def test_time_each_warms_up_then_times_every_input_per_repeat() -> None:
    calls: list[str] = []
    timings = time_each(calls.append, ["a", "b", "c"], warmup=2, repeats=2)
    assert calls == ["a", "a", "a", "b", "c", "a", "b", "c"]
    assert len(timings) == 6 and all(t >= 0 for t in timings)


def test_side_by_side_rotates_the_order_and_times_each_predict_apart() -> None:
    calls: list[tuple[str, int]] = []

    def fast(item: int) -> None:
        calls.append(("fast", item))

    def slow(item: int) -> None:
        calls.append(("slow", item))
        time.sleep(0.005)

    fast_s, slow_s = time_side_by_side([fast, slow], [0, 1, 2, 3], warmup=1, repeats=1)
    assert calls[:2] == [("fast", 0), ("slow", 0)]  # the warm-up
    timed = calls[2:]
    assert [who for who, _ in timed[::2]] == ["fast", "slow", "fast", "slow"]  # who goes first rotates per input
    assert [item for _, item in timed] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(fast_s) == len(slow_s) == 4
    assert min(slow_s) >= 0.005 > max(fast_s)
