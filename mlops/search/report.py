"""What the sweep's parent run shows at the end: best trial, counts, a markdown report, a trial table and Optuna's plots."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops.errors import SweepError

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


def _epochs(trial: optuna.trial.FrozenTrial) -> int:
    """Trial-epochs spent: the last epoch the trial reported (0 if it never reached one)."""
    return max(trial.intermediate_values, default=0)


def _seconds(trial: optuna.trial.FrozenTrial) -> float:
    return trial.duration.total_seconds() if trial.duration is not None else 0.0


def trial_counts(study: optuna.Study) -> dict[str, float]:
    """`n_complete`, `n_pruned`, `n_failed` (floats, as MLflow metrics)."""
    import optuna

    states = optuna.trial.TrialState
    wanted = {"n_complete": states.COMPLETE, "n_pruned": states.PRUNED, "n_failed": states.FAIL}
    return {name: float(sum(t.state == state for t in study.trials)) for name, state in wanted.items()}


def sweep_report(study: optuna.Study, metric: str, top: int = 5) -> str:
    """A markdown report: best trial, the top trials, pruned/failed counts and compute spent."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    counts = trial_counts(study)
    ranked = sorted(done, key=lambda t: float(t.value or 0.0), reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    best = study.best_trial
    names = sorted({k for t in ranked[:top] for k in t.params})
    wall = sum(_seconds(t) for t in study.trials)
    lines = [
        f"# Sweep `{study.study_name}`",
        "",
        f"Best: trial {best.number}, {metric} = {best.value:.4f} ({study.direction.name.lower()}), "
        + ", ".join(f"{k}={v}" for k, v in best.params.items()),
        "",
        f"Trials: {counts['n_complete']:.0f} complete, {counts['n_pruned']:.0f} pruned, {counts['n_failed']:.0f} failed.",
        f"Compute: {sum(_epochs(t) for t in study.trials)} trial-epochs, {wall:.0f} s of trial wall time.",
        "",
        f"## Top {min(top, len(ranked))}",
        "",
        "| trial | " + metric + " | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    lines += [f"| {t.number} | {t.value:.4f} | " + " | ".join(str(t.params.get(n, "")) for n in names) + " |" for t in ranked[:top]]
    return "\n".join(lines) + "\n"


def _log_plots(study: optuna.Study) -> None:
    """Optuna's optimisation history, parameter importances and parallel coordinates, as PNG."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from optuna.visualization import matplotlib as optuna_plots

    plots: dict[str, Callable[[optuna.Study], Any]] = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        "param_importances.png": optuna_plots.plot_param_importances,
        "parallel_coordinate.png": optuna_plots.plot_parallel_coordinate,
    }
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():  # the matplotlib backend is marked experimental
                warnings.simplefilter("ignore")
                axes = plot(study)
        except (ValueError, RuntimeError) as exc:  # e.g. importances need two or more complete trials
            logger.info("skipped %s: %s", name, exc)
            continue
        mlflow.log_figure(axes.get_figure(), f"plots/{name}")
        plt.close("all")


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The study's best trial; `SweepError` if none completed."""
    import optuna

    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise SweepError(f"no trial of study '{study.study_name}' completed; see the child runs' 'error' tags")
    return study.best_trial


def log_sweep_summary(study: optuna.Study, metric: str) -> optuna.trial.FrozenTrial:
    """Log the summary to the active (parent) run and return the best trial.

    Safe to repeat when a resumed study finishes again: the best trial goes into metrics and
    tags (params are immutable in MLflow) and the artifacts are overwritten.
    """
    import mlflow

    counts = trial_counts(study)
    mlflow.log_metrics(counts)
    best = best_trial(study)
    mlflow.set_tags({f"best.{k}": str(v) for k, v in best.params.items()})
    mlflow.log_metrics(
        {
            "best_trial_number": best.number,
            f"best_{metric}": float(best.value or 0.0),
            **{f"best_{k}": v for k, v in best.user_attrs.get("test_metrics", {}).items()},
        }
    )
    columns = ["trial", "state", metric, *sorted({k for t in study.trials for k in t.params}), "run_id"]
    rows = [
        [t.number, t.state.name, t.value, *(t.params.get(k) for k in columns[3:-1]), t.user_attrs.get("mlflow_run_id", "")]
        for t in study.trials
    ]
    mlflow.log_dict({"columns": columns, "data": rows}, "sweep_summary.json")  # MLflow's table layout
    mlflow.log_text(sweep_report(study, metric), "sweep_report.md")
    _log_plots(study)
    return best
