"""The sweep's state as the console events tell it (`Board`), shared by the displays, and the lines and table they
show it with."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.config import SearchConfig
from mlops.errors import SweepError
from mlops.search.console._base import SweepInfo
from mlops.search.duplicates import DUPLICATE_OF_ATTR
from mlops.search.selection import Selection, objective_values, pareto_front, select
from mlops.tracking import EPOCHS_SAVED_ATTR, GAP_ATTR, INFEASIBLE_TAG, TRIAL_RUN_ATTR, UiLinks

if TYPE_CHECKING:
    import optuna


def clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _state(trial: optuna.trial.FrozenTrial) -> str:
    state = {"FAIL": "failed"}.get(trial.state.name, trial.state.name.lower())
    return f"{state} (infeasible)" if trial.state.name == "COMPLETE" and INFEASIBLE_TAG in trial.user_attrs else state


def values_text(trial: optuna.trial.FrozenTrial, search: SearchConfig) -> str:
    """Each objective's value of `trial`: `eval_f1=0.8123, eval_loss=0.4012`."""
    return ", ".join(f"{k}={_value(v)}" for k, v in objective_values(trial, search.objective_list()).items())


def params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "(no parameters)"


def open_command(info: SweepInfo) -> str:
    """How to look at the parent run: its page on a tracking server, or `mlflow ui` over the local store."""
    links = UiLinks(info.tracking_uri)
    page = links.run(info.experiment_id, info.parent_run_id)
    return page if links.start_command is None else f"{links.start_command}, then {page}"


def is_infeasible(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial whose user attribute, or whose MLflow run's tag, says its configuration cannot run."""
    if trial.user_attrs.get(INFEASIBLE_TAG):
        return True
    run_id = trial.user_attrs.get(TRIAL_RUN_ATTR)
    if not run_id:
        return False
    import mlflow

    try:
        return bool(mlflow.MlflowClient().get_run(run_id).data.tags.get(INFEASIBLE_TAG))
    except mlflow.exceptions.MlflowException:
        return False


@dataclass
class Board:
    """The sweep's state as the events tell it, shared by the consoles: the trials the study held when this worker
    joined, then this worker's own, and those other workers finished, as of this worker's last finished trial."""

    info: SweepInfo
    started: float = field(default_factory=time.monotonic)
    pruned: int = 0
    failed: int = 0
    infeasible: int = 0
    durations: list[float] = field(default_factory=list)
    selection: Selection | None = None  # what `search.select` chooses among the completed trials
    done: list[optuna.trial.FrozenTrial] = field(default_factory=list)  # the completed trials, in finishing order
    running: int | None = None
    running_since: float = 0.0
    running_params: Mapping[str, Any] = field(default_factory=dict)
    latest: tuple[int, float] | None = None  # (epoch, value) of the running trial
    step: tuple[str, int, int | None] | None = None  # (what, done, total) of the running trial
    counted: set[int] = field(default_factory=set)  # numbers of the finished trials counted
    workers: int = 1  # this one, and those running a trial when it last looked

    @classmethod
    def joined(cls, info: SweepInfo, trials: Sequence[optuna.trial.FrozenTrial]) -> Board:
        board = cls(info)
        for trial in trials:
            board.finish(trial)
        return board

    @property
    def search(self) -> SearchConfig:
        return self.info.search or SearchConfig(metric=self.info.metric, direction=self.info.direction)  # type: ignore[arg-type]

    @property
    def best(self) -> optuna.trial.FrozenTrial | None:
        return self.selection.trial if self.selection is not None else None

    @property
    def finished(self) -> int:
        return len(self.counted)

    def started_line(self) -> str:
        info = self.info
        goals = ", ".join(f"{o.metric} ({o.sense})" for o in self.search.objective_list())
        return (
            f"{info.name}: study '{info.study_name}', {info.n_trials} trials ({self.finished} finished before), "
            f"{goals}; parent run {info.parent_run_id}; open it with: {open_command(info)}"
        )

    def start(self, number: int, params: Mapping[str, Any]) -> None:
        self.running, self.running_since, self.running_params = number, time.monotonic(), dict(params)
        self.latest, self.step = None, None

    def finish(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Count `trial`, once; True when the selection changes (the new best, with one objective)."""
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
        if trial.state != states.COMPLETE or trial.values is None:
            return False
        self.done.append(trial)
        before = self.best
        try:
            self.selection = select(self.done, self.search)
        except SweepError:  # none feasible yet
            self.selection = None
        return self.best is not None and (before is None or before.number != self.best.number)

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
        """The best trial so far; with several objectives, the front's size and the current selection."""
        if not self.search.multi_objective:
            if self.best is None:
                return "none yet"
            return f"trial {self.best.number}: {values_text(self.best, self.search)} ({params_text(self.best.params)})"
        front = len(pareto_front(self.done, self.search.objective_list()))
        if self.selection is None:
            return f"front of {front} trials; nothing feasible selected yet"
        chosen = self.selection.trial
        return f"front of {front} trials; selected trial {chosen.number} by {self.selection.rule}: {values_text(chosen, self.search)}"

    @property
    def best_label(self) -> str:
        return "front" if self.search.multi_objective else "best"

    def times(self) -> str:
        eta = self.eta()
        return f"elapsed {clock(self.elapsed())}, ETA {clock(eta) if eta is not None else 'after the first trial'}"


def finished_lines(board: Board, trial: optuna.trial.FrozenTrial, study_trials: Sequence[optuna.trial.FrozenTrial] = ()) -> list[str]:
    """Count what other workers finished (in `study_trials`, not counted yet), then `trial`, and say how each ended
    (the reason of a failure included) and, if so, that it is the new best."""
    others = [t for t in study_trials if t.number != trial.number and t.state.is_finished() and t.number not in board.counted]
    if study_trials:
        board.workers = 1 + sum(t.state.name == "RUNNING" and t.number != trial.number for t in study_trials)
    lines = [line for other in others for line in _outcome_lines(board, other, " (another worker)")]
    return lines + _outcome_lines(board, trial)


def _stopping_text(trial: optuna.trial.FrozenTrial, gap_threshold: float) -> str:
    """With early stopping: the epochs it saved, and the generalisation gap (flagged above `gap_threshold`)."""
    text = ""
    saved = trial.user_attrs.get(EPOCHS_SAVED_ATTR, 0)
    if saved:
        text += f", stopped early ({saved} epochs saved)"
    gap = trial.user_attrs.get(GAP_ATTR)
    if gap is not None:
        text += f", gap {gap:+.3f}" + (f" OVERFITTING (> {gap_threshold:g})" if gap > gap_threshold else "")
    return text


def _outcome_lines(board: Board, trial: optuna.trial.FrozenTrial, whose: str = "") -> list[str]:
    new_best = board.finish(trial)
    seconds = f" in {trial.duration.total_seconds():.1f} s" if trial.duration is not None else ""
    outcome = _state(trial)
    if trial.state.name == "COMPLETE":
        outcome += f": {values_text(trial, board.search)}" + _stopping_text(trial, board.info.gap_threshold)
        if INFEASIBLE_TAG in trial.user_attrs:
            outcome += f"; {trial.user_attrs[INFEASIBLE_TAG]}"
    elif trial.state.name == "PRUNED" and trial.intermediate_values:
        outcome += f" after epoch {max(trial.intermediate_values)}"
    elif trial.state.name == "FAIL" and "fail_reason" in trial.user_attrs:
        outcome += f": {trial.user_attrs['fail_reason']}"
    lines = [f"trial {trial.number}{whose} {outcome}{seconds}; {board.counts()}; {board.times()}"]
    word = "selection" if board.search.multi_objective else "new best"
    return [*lines, f"{word}: {board.best_text()}"] if new_best else lines


def summary_line(board: Board, trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    """The line above the final table, counted over all of the study's `trials` (other workers' too)."""
    study = Board.joined(board.info, trials)
    return f"{board.info.name}: {study.counts()}; {study.best_label} {study.best_text()}; this worker {clock(board.elapsed())}"


def trial_table(trials: Sequence[optuna.trial.FrozenTrial], info: SweepInfo) -> tuple[list[str], list[list[str]]]:
    """(header, rows): every trial's number, state, objectives, parameters and duration."""
    search = Board(info).search
    metrics = [o.metric for o in search.objective_list()]
    names = sorted({k for t in trials for k in t.params})
    header = ["trial", "state", *metrics, *names, "duration"]
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        state = _state(t) + (f" (= trial {t.user_attrs[DUPLICATE_OF_ATTR]})" if DUPLICATE_OF_ATTR in t.user_attrs else "")
        params = [f"{t.params[k]:.3g}" if isinstance(t.params.get(k), float) else str(t.params.get(k, "-")) for k in names]
        seconds = clock(t.duration.total_seconds()) if t.duration is not None else "-"
        values = objective_values(t, search.objective_list())
        rows.append([str(t.number), state, *(_value(values.get(m)) for m in metrics), *params, seconds])
    return header, rows
