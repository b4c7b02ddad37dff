"""The serving cost of a trained adapter, measured the same way on every run that trains one (`train_and_log`):
the served model loaded through its pyfunc class (`mlops.serving.load_servable`, what `mlflow models serve` runs)
and timed on the first `cost.examples` inputs of the test split: latency per example at batch 1 after a warm-up,
throughput at the serving batch size (the whole sample in one predict call, which batches as serving does), the
parameters and bytes it holds, the peak memory of loading and serving it; for a task that generates, the tokens it
generates (the served text re-tokenised: the pyfunc returns text), their ratio to the input document's tokens and the
tokens per second. The names are `mlops.tasks`' cost metrics; the measurement's own wall time is `infer_cost_seconds`."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from mlops.data import SummarizationData
from mlops.evaluate import latency_metrics, rate, time_each
from mlops.serving import adapter_bytes, load_servable, served_size
from mlops.tasks import (
    COMPRESSION_RATIO,
    GENERATED_TOKENS_MEAN,
    INFER_COST_SECONDS,
    INFER_EXAMPLES_PER_SECOND,
    INFER_PEAK_MEMORY,
    INFER_TOKENS_PER_SECOND,
)
from mlops.train.telemetry import peak_memory_gib, release_memory, reset_peak_memory

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from mlops.config import ExperimentConfig
    from mlops.data import TaskData


def _token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    return [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _served(config: ExperimentConfig, data: TaskData, servable: Any, frame: pd.DataFrame) -> dict[str, float]:
    """Latency at batch 1, throughput at the serving batch size, size, and for a task that generates its tokens."""
    settings = config.cost
    rows = [frame.iloc[[i]].reset_index(drop=True) for i in range(len(frame))]
    metrics = latency_metrics(time_each(lambda row: servable.predict(None, row), rows, settings.warmup, settings.repeats))
    began = time.perf_counter()
    output = servable.predict(None, frame)  # the pyfunc batches as it does when served
    batch_seconds = time.perf_counter() - began
    metrics[INFER_EXAMPLES_PER_SECOND] = rate(len(frame), batch_seconds)
    metrics |= served_size(servable)
    if config.spec.generates and isinstance(data, SummarizationData):
        column = config.spec.serving.output_columns[0]
        generated = _token_counts(servable.tokenizer, [str(t) for t in output[column]])
        documents = _token_counts(servable.tokenizer, data.test.documents[: len(frame)])
        metrics[GENERATED_TOKENS_MEAN] = statistics.fmean(generated)
        metrics[COMPRESSION_RATIO] = sum(generated) / max(sum(documents), 1)
        metrics[INFER_TOKENS_PER_SECOND] = rate(sum(generated), batch_seconds)
    return metrics


def measure_cost(config: ExperimentConfig, data: TaskData, adapter_dir: Path) -> dict[str, float]:
    """The cost metrics of the adapter in `adapter_dir` as served, on `data`'s test split (none with
    `cost.examples: 0`)."""
    frame = data.serving_frame("test", config.cost.examples)
    if frame.empty:
        return {}
    start = time.perf_counter()
    device = _device()
    release_memory()  # what training left behind is not the served model's
    reset_peak_memory(device)
    metrics = _served(config, data, load_servable(adapter_dir), frame) | adapter_bytes(adapter_dir)
    metrics[INFER_PEAK_MEMORY] = peak_memory_gib(device)
    release_memory()  # the served copy is dropped: the next trial starts from the baseline
    metrics[INFER_COST_SECONDS] = time.perf_counter() - start
    return metrics
