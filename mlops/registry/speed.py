"""Champion against challenger on speed: both served models loaded in this process and timed side by side, at
batch 1, on the same inputs (the challenger's logged input example), interleaved so that the machine's drift falls
on both alike. What `no_slower_than` judges; never two runs' logged figures, measured on different days."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.evaluate import time_side_by_side

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

WARMUP = 2  # untimed predictions of each model before the timed ones


@dataclass(frozen=True)
class SideBySide:
    """The median latency per input of each model (ms), over `inputs` x `repeats` timed predictions each; or why
    they could not be timed."""

    champion_version: str
    champion_ms: float = math.nan
    challenger_ms: float = math.nan
    inputs: int = 0
    repeats: int = 0
    problem: str | None = None

    @property
    def ratio(self) -> float:
        """Challenger over champion: 1.10 is 10 % slower."""
        return self.challenger_ms / self.champion_ms if self.champion_ms > 0 else math.inf

    def describe(self) -> str:
        return (
            f"{self.challenger_ms:.3f} ms vs champion v{self.champion_version} {self.champion_ms:.3f} ms per input at batch 1 "
            f"(x{self.ratio:.3f}; side by side in one process, {self.inputs} inputs x {self.repeats} repeats, after {WARMUP} warm-up)"
        )


def _load(version: ModelVersion) -> Any:
    import warnings

    import mlflow

    with warnings.catch_warnings():  # models logged by release 0.1.0 have an untyped `predict` (see `run_evaluate`)
        warnings.filterwarnings("ignore", message=r"(\x1b\[\d+m)?Add type hints to the `predict` method", category=UserWarning)
        return mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")


def time_against_champion(challenger: ModelVersion, champion: ModelVersion, repeats: int) -> SideBySide:
    """Load both versions' served models and time them side by side on the challenger's input example."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    timed = str(champion.version)
    try:
        models = [_load(champion), _load(challenger)]
    except (MlflowException, OSError) as exc:
        return SideBySide(timed, problem=f"cannot load both models to time them: {str(exc).splitlines()[0]}")
    example = models[1].input_example
    if example is None:
        example = models[0].input_example
    if example is None or not len(example):
        return SideBySide(timed, problem="neither model logged an input example to time them on")
    if not isinstance(example, pd.DataFrame):
        example = pd.DataFrame(example)
    rows = [example.iloc[[i]].reset_index(drop=True) for i in range(len(example))]
    champion_s, challenger_s = time_side_by_side([m.predict for m in models], rows, WARMUP, repeats)
    return SideBySide(timed, statistics.median(champion_s) * 1000, statistics.median(challenger_s) * 1000, len(rows), repeats)
