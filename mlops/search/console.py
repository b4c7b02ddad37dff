"""The sweep console: what a person watching `mlops sweep` or `mlops main` sees.

The sweep only calls the hooks of `SweepConsole` (sweep started, trial started, epoch metric, trial finished, sweep
finished). `RichConsole` keeps one live display on a terminal: trials finished out of the budget with pruned, failed
and infeasible counts, the running trial with its parameters, progress and latest validation metric, the best trial so
far, elapsed time and an ETA from the finished trials' durations, the parent run and how to open it. `PlainConsole`
prints one line per event instead (CI, nohup, files): no control codes. Both end with a table of the trials.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from mlops.output import text_table
from mlops.progress import reporting_to
from mlops.search.duplicates import DUPLICATE_OF_ATTR
from mlops.tracking import UiLinks

if TYPE_CHECKING:
    import optuna
    from rich.console import Console, RenderableType

INFEASIBLE = "mlops.infeasible"  # a trial's user attribute or run tag: its configuration cannot run


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


def clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _state(trial: optuna.trial.FrozenTrial) -> str:
    return {"FAIL": "failed"}.get(trial.state.name, trial.state.name.lower())


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "(no parameters)"


def open_command(info: SweepInfo) -> str:
    """How to look at the parent run: its page on a tracking server, or `mlflow ui` over the local store."""
    links = UiLinks(info.tracking_uri)
    page = links.run(info.experiment_id, info.parent_run_id)
    return page if links.start_command is None else f"{links.start_command}, then {page}"


def is_infeasible(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial whose user attribute, or whose MLflow run's tag, says its configuration cannot run."""
    if trial.user_attrs.get(INFEASIBLE):
        return True
    run_id = trial.user_attrs.get("mlflow_run_id")
    if not run_id:
        return False
    import mlflow

    try:
        return bool(mlflow.MlflowClient().get_run(run_id).data.tags.get(INFEASIBLE))
    except mlflow.exceptions.MlflowException:
        return False


@dataclass
class _Board:
    """The sweep's state as the events tell it, shared by the consoles: the trials the study held when this worker
    joined, then this worker's own, and those other workers finished, as of this worker's last finished trial."""

    info: SweepInfo
    started: float = field(default_factory=time.monotonic)
    pruned: int = 0
    failed: int = 0
    infeasible: int = 0
    durations: list[float] = field(default_factory=list)
    best: optuna.trial.FrozenTrial | None = None
    running: int | None = None
    running_since: float = 0.0
    running_params: Mapping[str, Any] = field(default_factory=dict)
    latest: tuple[int, float] | None = None  # (epoch, value) of the running trial
    step: tuple[str, int, int | None] | None = None  # (what, done, total) of the running trial
    counted: set[int] = field(default_factory=set)  # numbers of the finished trials counted
    workers: int = 1  # this one, and those running a trial when it last looked

    @classmethod
    def joined(cls, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> _Board:
        board = cls(info)
        for trial in trials:
            board.finish(trial)
        return board

    @property
    def finished(self) -> int:
        return len(self.counted)

    def started_line(self) -> str:
        info = self.info
        return (
            f"{info.name}: study '{info.study_name}', {info.n_trials} trials ({self.finished} finished before), "
            f"{info.metric} ({info.direction}); parent run {info.parent_run_id}; open it with: {open_command(info)}"
        )

    def start(self, number: int, params: Mapping[str, Any]) -> None:
        self.running, self.running_since, self.running_params = number, time.monotonic(), dict(params)
        self.latest, self.step = None, None

    def finish(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Count `trial`, once; True when it is the new best."""
        import optuna

        states = optuna.trial.TrialState
        if not trial.state.is_finished() or trial.number in self.counted:
            return False
        self.counted.add(trial.number)
        self.pruned += trial.state == states.PRUNED
        self.failed += trial.state == states.FAIL
        self.infeasible += is_infeasible(trial)
        if trial.duration is not None:
            self.durations.append(trial.duration.total_seconds())
        if trial.number == self.running:
            self.running = None
        if trial.state != states.COMPLETE or trial.value is None:
            return False
        if self.best is None or self._better(trial.value, float(self.best.value or 0.0)):
            self.best = trial
            return True
        return False

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.info.direction == "maximize" else value < than

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def eta(self) -> float | None:
        """Seconds left: the mean finished-trial duration times the trials not started, shared among the workers, plus
        what the running trial has left of it; None before any trial finished."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        left = max(0, self.info.n_trials - self.finished - (self.running is not None))
        current = max(0.0, mean - (time.monotonic() - self.running_since)) if self.running is not None else 0.0
        return left * mean / self.workers + current

    def counts(self) -> str:
        return f"{self.finished}/{self.info.n_trials} finished, {self.pruned} pruned, {self.failed} failed, {self.infeasible} infeasible"

    def best_text(self) -> str:
        if self.best is None:
            return "none yet"
        return f"trial {self.best.number}: {self.info.metric}={_value(self.best.value)} ({_params(self.best.params)})"

    def times(self) -> str:
        eta = self.eta()
        return f"elapsed {clock(self.elapsed())}, ETA {clock(eta) if eta is not None else 'after the first trial'}"


def _finished_lines(board: _Board, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> list[str]:
    """Count what other workers finished (in `study_trials`, not counted yet), then `trial`, and say how each ended
    (the reason of a failure included) and, if so, that it is the new best."""
    others = [t for t in study_trials if t.number != trial.number and t.state.is_finished() and t.number not in board.counted]
    if study_trials:
        board.workers = 1 + sum(t.state.name == "RUNNING" and t.number != trial.number for t in study_trials)
    lines = [line for other in others for line in _outcome_lines(board, other, " (another worker)")]
    return lines + _outcome_lines(board, trial)


def _outcome_lines(board: _Board, trial: optuna.trial.FrozenTrial, whose: str = "") -> list[str]:
    new_best = board.finish(trial)
    seconds = f" in {trial.duration.total_seconds():.1f} s" if trial.duration is not None else ""
    outcome = _state(trial)
    if trial.state.name == "COMPLETE":
        outcome += f": {board.info.metric}={_value(trial.value)}"
    elif trial.state.name == "PRUNED" and trial.intermediate_values:
        outcome += f" after epoch {max(trial.intermediate_values)}"
    elif trial.state.name == "FAIL" and "fail_reason" in trial.user_attrs:
        outcome += f": {trial.user_attrs['fail_reason']}"
    lines = [f"trial {trial.number}{whose} {outcome}{seconds}; {board.counts()}; {board.times()}"]
    return [*lines, f"new best: {board.best_text()}"] if new_best else lines


def _summary(board: _Board, trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    """The line above the final table, counted over all of the study's `trials` (other workers' too)."""
    study = _Board.joined(board.info, trials)
    return f"{board.info.name}: {study.counts()}; best {study.best_text()}; this worker {clock(board.elapsed())}"


def trial_table(trials: Sequence[optuna.trial.FrozenTrial], metric: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows): every trial's number, state, metric, parameters and duration."""
    names = sorted({k for t in trials for k in t.params})
    header = ["trial", "state", metric, *names, "duration"]
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        state = _state(t) + (f" (= trial {t.user_attrs[DUPLICATE_OF_ATTR]})" if DUPLICATE_OF_ATTR in t.user_attrs else "")
        params = [f"{t.params[k]:.3g}" if isinstance(t.params.get(k), float) else str(t.params.get(k, "-")) for k in names]
        seconds = clock(t.duration.total_seconds()) if t.duration is not None else "-"
        rows.append([str(t.number), state, _value(t.value), *params, seconds])
    return header, rows


class PlainConsole:
    """One line per event, for output that is not a terminal: no colours, no cursor movement."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.board: _Board | None = None

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def sweep_started(self, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        self.board = _Board.joined(info, trials)
        self._line(self.board.started_line())

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        if self.board is not None:
            self.board.start(number, params)
        self._line(f"trial {number} started: {_params(params)}")

    def trial_epoch(self, number: int, epoch: int, value: float) -> None:
        metric = self.board.info.metric if self.board is not None else "metric"
        self._line(f"trial {number} epoch {epoch}: {metric}={value:.4f}")

    def trial_finished(self, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> None:
        if self.board is None:
            return
        for line in _finished_lines(self.board, trial, study_trials):
            self._line(line)

    def sweep_finished(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        if self.board is None:
            return
        header, rows = trial_table(trials, self.board.info.metric)
        self._line(_summary(self.board, trials))
        for line in text_table(header, rows):
            self._line(line)

    def close(self) -> None:
        pass


class RichConsole:
    """One live display on a terminal, redrawn a few times a second; log lines and other output appear above it."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.board: _Board | None = None
        self._lock = threading.RLock()  # a log line drawn while an event holds it renders the display again
        self._stack = ExitStack()

    def sweep_started(self, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        from rich.live import Live

        self.close()
        with self._lock:
            self.board = _Board.joined(info, trials)
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
            lines = _finished_lines(self.board, trial, study_trials) if self.board is not None else []
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
                grid.add_row(f"trial {board.running}", _params(board.running_params))
                if board.step is not None:
                    what, done, total = board.step
                    bar = Table.grid(padding=(0, 1))
                    bar.add_row(ProgressBar(total=total, completed=done, width=30), f"{what} {done}/{total}" if total else what)
                    grid.add_row("", bar)
                latest = f"{board.info.metric}={board.latest[1]:.4f} after epoch {board.latest[0]}" if board.latest else "-"
                grid.add_row("latest", latest)
            grid.add_row("best", board.best_text())
            grid.add_row("time", board.times())
            grid.add_row("parent run", board.info.parent_run_id)
            grid.add_row("open", open_command(board.info))
            return Panel(grid, title=f"{board.info.name} · study {board.info.study_name}", title_align="left", expand=False)

    def sweep_finished(self, trials: Sequence[optuna.trial.FrozenTrial]) -> None:
        from rich.table import Table

        self.close()
        if self.board is None:
            return
        header, rows = trial_table(trials, self.board.info.metric)
        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        self.console.print(_summary(self.board, trials), markup=False, highlight=False, soft_wrap=True)
        self.console.print(table)

    def close(self) -> None:
        self._stack.close()


def make_console(verbose: bool = False, stream: TextIO | None = None) -> RichConsole | PlainConsole:
    """`RichConsole` when `stream` (stdout) is a terminal, else `PlainConsole`. Unless `verbose`, Optuna's own INFO
    lines are off: the console says what they say."""
    import optuna

    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    stream = stream or sys.stdout
    if getattr(stream, "isatty", lambda: False)():
        from rich.console import Console

        return RichConsole(Console(file=stream))
    return PlainConsole(stream)
