"""The console for a terminal: one live display of the sweep, redrawn a few times a second."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from mlops.progress import reporting_to
from mlops.search.console._base import SweepInfo
from mlops.search.console._board import Board, finished_lines, open_command, params_text, summary_line, trial_table

if TYPE_CHECKING:
    import optuna
    from rich.console import Console, RenderableType


class RichConsole:
    """One live display on a terminal, redrawn a few times a second; log lines and other output appear above it."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.board: Board | None = None
        self._lock = threading.RLock()  # a log line drawn while an event holds it renders the display again
        self._stack = ExitStack()

    def sweep_started(self, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        from rich.live import Live

        self.close()
        with self._lock:
            self.board = Board.joined(info, trials)
        self.console.print(self.board.started_line(), markup=False, highlight=False, soft_wrap=True)  # the terminal wraps it
        self._stack.enter_context(Live(self, console=self.console, refresh_per_second=4))
        self._stack.enter_context(reporting_to(self._on_step))  # training steps and other long steps: in the display

    def _on_step(self, what: str, done: int, total: int | None) -> None:
        if self.board is not None:
            self.board.step = (what, done, total)

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        with self._lock:
            if self.board is not None:
                self.board.start(number, params)

    def trial_epoch(self, number: int, epoch: int, value: float) -> None:
        with self._lock:
            if self.board is not None:
                self.board.latest = (epoch, value)

    def trial_finished(self, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> None:
        with self._lock:
            lines = finished_lines(self.board, trial, study_trials) if self.board is not None else []
        for line in lines:  # above the display: the scrollback keeps every trial's outcome
            self.console.print(line, markup=False, highlight=False)

    def __rich__(self) -> RenderableType:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        with self._lock:
            board = self.board
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column()
            if board is None:
                return grid
            grid.add_row("trials", board.counts())
            if board.running is not None:
                grid.add_row(f"trial {board.running}", params_text(board.running_params))
                if board.step is not None:
                    what, done, total = board.step
                    bar = Table.grid(padding=(0, 1))
                    bar.add_row(ProgressBar(total=total, completed=done, width=30), f"{what} {done}/{total}" if total else what)
                    grid.add_row("", bar)
                latest = f"{board.info.metric}={board.latest[1]:.4f} after epoch {board.latest[0]}" if board.latest else "-"
                grid.add_row("latest", latest)
            grid.add_row(board.best_label, board.best_text())
            grid.add_row("time", board.times())
            grid.add_row("parent run", board.info.parent_run_id)
            grid.add_row("open", open_command(board.info))
            return Panel(grid, title=f"{board.info.name} · study {board.info.study_name}", title_align="left", expand=False)

    def sweep_finished(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        from rich.table import Table

        self.close()
        if self.board is None:
            return
        header, rows = trial_table(trials, self.board.info)
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        self.console.print(summary_line(self.board, trials), markup=False, highlight=False, soft_wrap=True)
        self.console.print(table)

    def close(self) -> None:
        self._stack.close()
