"""The console interface: the hooks the sweep calls (`SweepConsole`), what they say about the sweep (`SweepInfo`), and
the console that shows nothing (`NullConsole`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import optuna

    from mlops.config import SearchConfig


@dataclass(frozen=True)
class SweepInfo:
    """What the console says about the sweep as a whole."""

    name: str  # the parent run's name (sweep-<config>, or a stage of `main`)
    study_name: str
    n_trials: int
    metric: str
    direction: str  # maximize or minimize
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    gap_threshold: float = 0.1  # a finished trial whose generalisation gap exceeds this is flagged
    search: SearchConfig | None = None  # its objectives, constraints and selection rule; None: `metric` in `direction`


class SweepConsole(Protocol):
    """The hooks the sweep calls; an implementation decides what, if anything, to show."""

    def sweep_started(self, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        """The sweep is about to claim trials; `trials` are those the study already holds (a resumed study)."""

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        """Trial `number` drew `params` and starts training."""

    def trial_epoch(self, number: int, epoch: int, value: float) -> None:
        """Trial `number` reported the search metric after `epoch`."""

    def trial_finished(self, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> None:
        """Optuna was told the trial's outcome (complete, pruned or failed); `study_trials`, the study's trials at that
        moment, show what other workers have finished since."""

    def sweep_finished(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        """All trials are done: show the table of `trials`."""

    def close(self) -> None:
        """Stop any display; safe to call more than once, also after an error."""


class NullConsole:
    """Shows nothing: the sweep as a library call."""

    def sweep_started(self, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        pass

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        pass

    def trial_epoch(self, number: int, epoch: int, value: float) -> None:
        pass

    def trial_finished(self, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> None:
        pass

    def sweep_finished(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        pass

    def close(self) -> None:
        pass
