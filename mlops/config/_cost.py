"""The `cost` section: how much of the test split the served model is timed on after training."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.config._training import _help

MAX_COST_EXAMPLES = 10_000


@dataclass
class CostConfig:
    examples: int = field(
        default=32, metadata=_help("test inputs (at most) the served model is timed on after training; 0: no cost measured")
    )
    warmup: int = field(default=2, metadata=_help("untimed predictions at batch 1 before the timed ones"))
    repeats: int = field(default=1, metadata=_help("timed passes over the sample at batch 1; the latency percentiles pool them"))

    def check(self, path: str) -> list[str]:
        errors = []
        if not 0 <= self.examples <= MAX_COST_EXAMPLES:
            errors.append(f"{path}.examples: must be in [0, {MAX_COST_EXAMPLES}] (0: no cost measured), got {self.examples}")
        if not 0 <= self.warmup <= 100:
            errors.append(f"{path}.warmup: must be in [0, 100], got {self.warmup}")
        if not 1 <= self.repeats <= 100:
            errors.append(f"{path}.repeats: must be in [1, 100], got {self.repeats}")
        return errors
