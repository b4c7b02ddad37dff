"""The console for output that is not a terminal (CI, nohup, files): one line per event."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from mlops.output import text_table
from mlops.search.console._base import SweepInfo
from mlops.search.console._board import Board, finished_lines, params_text, summary_line, trial_table

if TYPE_CHECKING:
    import optuna


class PlainConsole:
    """One line per event, for output that is not a terminal: no colours, no cursor movement."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.board: Board | None = None

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def sweep_started(self, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        self.board = Board.joined(info, trials)
        self._line(self.board.started_line())

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        if self.board is not None:
            self.board.start(number, params)
        self._line(f"trial {number} started: {params_text(params)}")

    def trial_epoch(self, number: int, epoch: int, value: float) -> None:
        metric = self.board.info.metric if self.board is not None else "metric"
        self._line(f"trial {number} epoch {epoch}: {metric}={value:.4f}")

    def trial_finished(self, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> None:
        if self.board is None:
            return
        for line in finished_lines(self.board, trial, study_trials):
            self._line(line)

    def sweep_finished(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        if self.board is None:
            return
        header, rows = trial_table(trials, self.board.info)
        self._line(summary_line(self.board, trials))
        for line in text_table(header, rows):
            self._line(line)

    def close(self) -> None:
        pass
