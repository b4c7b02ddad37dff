"""What the sweep's parent run shows at the end: best trial, counts (duplicates and the compute they saved included), a
markdown report, a trial table and Optuna's plots."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops.errors import SweepError
from mlops.search.duplicates import DUPLICATE_OF_ATTR, original_of
from mlops.tracking import EPOCHS_SAVED_ATTR, GAP_ATTR, SWEEP_REPORT_ARTIFACT, SWEEP_SUMMARY_ARTIFACT, TRIAL_RUN_ATTR, current_links
from mlops.tracking.links import NOTE_TAG

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


def _epochs(trial: optuna.trial.FrozenTrial) -> int:
    """Trial-epochs spent: the last epoch the trial reported (0 if it never reached one)."""
    return max(trial.intermediate_values, default=0)


def _seconds(trial: optuna.trial.FrozenTrial) -> float:
    return trial.duration.total_seconds() if trial.duration is not None else 0.0


def _duplicates(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Complete trials that reused an earlier trial's result instead of training."""
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and DUPLICATE_OF_ATTR in t.user_attrs]


def trial_counts(study: optuna.Study) -> dict[str, float]:
    """`n_complete` (duplicates included), `n_pruned`, `n_failed`, `n_duplicate` (floats, as MLflow metrics)."""
    import optuna

    states = optuna.trial.TrialState
    wanted = {"n_complete": states.COMPLETE, "n_pruned": states.PRUNED, "n_failed": states.FAIL}
    counts = {name: float(sum(t.state == state for t in study.trials)) for name, state in wanted.items()}
    return counts | {"n_duplicate": float(len(_duplicates(study)))}


def duplicate_savings(study: optuna.Study) -> dict[str, float]:
    """What the duplicates did not spend: the wall time and the trial-epochs of the trials whose results they reused."""
    originals = [original_of(study, t) for t in _duplicates(study)]
    return {
        "duplicate_seconds_saved": sum(_seconds(t) for t in originals),
        "duplicate_epochs_saved": float(sum(_epochs(t) for t in originals)),
    }


def early_stopping_savings(study: optuna.Study) -> dict[str, float]:
    """The trial-epochs early stopping did not train, over the study's trials (0 without early stopping)."""
    return {"epochs_saved_by_early_stopping": float(sum(t.user_attrs.get(EPOCHS_SAVED_ATTR, 0) for t in study.trials))}


def overfitting(study: optuna.Study, threshold: float) -> list[optuna.trial.FrozenTrial]:
    """Trials whose generalisation gap (train - validation at the kept evaluation) exceeds `threshold`."""
    return [t for t in study.trials if t.user_attrs.get(GAP_ATTR, -float("inf")) > threshold]


def sweep_report(study: optuna.Study, metric: str, top: int = 5, gap_threshold: float = 0.1) -> str:
    """A markdown report: best trial, the top configurations (duplicates left out), pruned/failed/duplicate counts,
    compute spent and compute the duplicates saved."""
    import optuna

    duplicates = _duplicates(study)
    reused = {t.number for t in duplicates}
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.number not in reused]
    counts, saved = trial_counts(study), duplicate_savings(study)
    ranked = sorted(done, key=lambda t: float(t.value or 0.0), reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    best = best_trial(study)
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
    ]
    stopped = [t for t in study.trials if t.user_attrs.get(EPOCHS_SAVED_ATTR, 0) > 0]
    if any(EPOCHS_SAVED_ATTR in t.user_attrs for t in study.trials):
        epochs_saved = early_stopping_savings(study)["epochs_saved_by_early_stopping"]
        lines.append(f"Early stopping: {len(stopped)} trials stopped early; saved {epochs_saved:.0f} trial-epochs.")
    flagged = overfitting(study, gap_threshold)
    if flagged:
        gaps = ", ".join(f"trial {t.number} ({t.user_attrs[GAP_ATTR]:.3f})" for t in flagged)
        lines.append(f"Generalisation gap above {gap_threshold:g} (train - validation): {gaps}.")
    if duplicates:
        pairs = ", ".join(f"trial {t.number} = trial {t.user_attrs[DUPLICATE_OF_ATTR]}" for t in duplicates)
        lines.append(
            f"Duplicates: {len(duplicates)} ({pairs}): configurations already run, whose results were reused without training; "
            f"saved {saved['duplicate_seconds_saved']:.0f} s and {saved['duplicate_epochs_saved']:.0f} trial-epochs."
        )
    lines += [
        "",
        f"## Top {min(top, len(ranked))} configurations",
        "",
        "| trial | " + metric + " | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    lines += [f"| {t.number} | {t.value:.4f} | " + " | ".join(str(t.params.get(n, "n/a")) for n in names) + " |" for t in ranked[:top]]
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
    """The study's best trial, or the trial it duplicates (which trained, and holds the adapter); `SweepError` if none
    completed."""
    import optuna

    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        raise SweepError(f"no trial of study '{study.study_name}' completed; see the child runs' 'error' tags")
    return original_of(study, study.best_trial)


def log_sweep_summary(study: optuna.Study, metric: str, gap_threshold: float = 0.1) -> optuna.trial.FrozenTrial:
    """Log the summary to the active (parent) run and return the best trial.

    Safe to repeat when a resumed study finishes again: the best trial goes into metrics and
    tags (params are immutable in MLflow) and the artifacts are overwritten.
    """
    import mlflow

    mlflow.log_metrics(trial_counts(study) | duplicate_savings(study) | early_stopping_savings(study))
    best = best_trial(study)
    mlflow.set_tags({f"best.{k}": str(v) for k, v in best.params.items()})
    mlflow.log_metrics(
        {
            "best_trial_number": best.number,
            f"best_{metric}": float(best.value or 0.0),
            **{f"best_{k}": v for k, v in best.user_attrs.get("test_metrics", {}).items()},
        }
    )
    names = sorted({k for t in study.trials for k in t.params})
    columns = ["trial", "state", metric, *names, "duplicate_of", GAP_ATTR, EPOCHS_SAVED_ATTR, "run_id"]
    rows = [
        [
            t.number,
            t.state.name,
            t.value,
            *(t.params.get(k) for k in names),  # None: the setting did not apply to that trial
            t.user_attrs.get(DUPLICATE_OF_ATTR),
            t.user_attrs.get(GAP_ATTR),
            t.user_attrs.get(EPOCHS_SAVED_ATTR),
            t.user_attrs.get(TRIAL_RUN_ATTR, ""),
        ]
        for t in study.trials
    ]
    mlflow.log_dict({"columns": columns, "data": rows}, SWEEP_SUMMARY_ARTIFACT)  # MLflow's table layout
    mlflow.log_text(sweep_report(study, metric, gap_threshold=gap_threshold), SWEEP_REPORT_ARTIFACT)
    _log_plots(study)
    return best


def describe_sweep_run(study: optuna.Study, metric: str, best: optuna.trial.FrozenTrial, version: tuple[str, str] | None) -> None:
    """Give the active (parent) run a description naming the best trial and the registered version, and end its
    report with links that open the MLflow UI's model-training view."""
    import mlflow

    run = mlflow.active_run()
    assert run is not None
    registered = f"; registered as {version[0]} v{version[1]}" if version else "; nothing registered"
    best_run = best.user_attrs.get(TRIAL_RUN_ATTR, "")
    best_is = f"best trial {best.number} ({metric}={best.value:.4f}, run {best_run})"
    mlflow.set_tag(NOTE_TAG, f"Sweep of study '{study.study_name}': {best_is}{registered}.")
    links = "\n".join(f"- {line}" for line in current_links().lines((run.info.experiment_id, run.info.run_id), version))
    mlflow.log_text(f"{sweep_report(study, metric)}\n## Open in the MLflow UI\n\n{links}\n", "sweep_report.md")
