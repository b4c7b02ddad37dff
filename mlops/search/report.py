"""What the sweep's parent run shows at the end: the selected trial and why, counts (duplicates and the compute they
saved included), a markdown report, a trial table, Optuna's plots and, with several objectives, the Pareto front."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops.config import SearchConfig
from mlops.errors import SweepError
from mlops.search.duplicates import DUPLICATE_OF_ATTR, original_of
from mlops.search.pareto import front_table, log_pareto_front
from mlops.search.selection import Selection, objective_values, ranked, select
from mlops.tracking import (
    EPOCHS_REPORTED_ATTR,
    EPOCHS_SAVED_ATTR,
    GAP_ATTR,
    INFEASIBLE_TAG,
    SELECTED_TRIAL_TAG,
    SELECTION_REASON_TAG,
    SELECTION_RULE_TAG,
    SWEEP_REPORT_ARTIFACT,
    SWEEP_SUMMARY_ARTIFACT,
    TRIAL_RUN_ATTR,
    current_links,
)
from mlops.tracking.links import NOTE_TAG

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


def _epochs(trial: optuna.trial.FrozenTrial) -> int:
    """Trial-epochs spent: the last epoch the trial reported (0 if it never reached one)."""
    return max(trial.intermediate_values, default=int(trial.user_attrs.get(EPOCHS_REPORTED_ATTR, 0)))


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


def _values_text(trial: optuna.trial.FrozenTrial, search: SearchConfig) -> str:
    return ", ".join(f"{k} = {v:.4f}" for k, v in objective_values(trial, search.objective_list()).items())


def sweep_report(study: optuna.Study, search: SearchConfig, selection: Selection, top: int = 5) -> str:
    """A markdown report: the selected trial and the rule that chose it, the top configurations by that rule
    (duplicates and infeasible trials left out), with several objectives the Pareto front, pruned/failed/duplicate
    counts, compute spent and compute the duplicates saved."""
    duplicates = _duplicates(study)
    counts, saved = trial_counts(study), duplicate_savings(study)
    best, leaders = selection.trial, ranked(study.trials, search)[:top]
    names = sorted({k for t in leaders for k in t.params})
    metrics = [o.metric for o in search.objective_list()]
    directions = ", ".join(o.sense for o in search.objective_list())
    wall = sum(_seconds(t) for t in study.trials)
    infeasible = [t for t in study.trials if t.state.name == "COMPLETE" and INFEASIBLE_TAG in t.user_attrs]
    lines = [
        f"# Sweep `{study.study_name}`",
        "",
        f"Best: trial {best.number}, {_values_text(best, search)} ({directions}), " + ", ".join(f"{k}={v}" for k, v in best.params.items()),
        "",
        f"Selection: {selection.rule}: {selection.reason}.",
        "",
        f"Trials: {counts['n_complete']:.0f} complete, {counts['n_pruned']:.0f} pruned, {counts['n_failed']:.0f} failed.",
        f"Compute: {sum(_epochs(t) for t in study.trials)} trial-epochs, {wall:.0f} s of trial wall time.",
    ]
    if infeasible:
        lines.append(f"Infeasible (search.constraints): {', '.join(f'trial {t.number}' for t in infeasible)}; never selected.")
    stopped = [t for t in study.trials if t.user_attrs.get(EPOCHS_SAVED_ATTR, 0) > 0]
    if any(EPOCHS_SAVED_ATTR in t.user_attrs for t in study.trials):
        epochs_saved = early_stopping_savings(study)["epochs_saved_by_early_stopping"]
        lines.append(f"Early stopping: {len(stopped)} trials stopped early; saved {epochs_saved:.0f} trial-epochs.")
    flagged = overfitting(study, search.gap_threshold)
    if flagged:
        gaps = ", ".join(f"trial {t.number} ({t.user_attrs[GAP_ATTR]:.3f})" for t in flagged)
        lines.append(f"Generalisation gap above {search.gap_threshold:g} (train - validation): {gaps}.")
    if duplicates:
        pairs = ", ".join(f"trial {t.number} = trial {t.user_attrs[DUPLICATE_OF_ATTR]}" for t in duplicates)
        lines.append(
            f"Duplicates: {len(duplicates)} ({pairs}): configurations already run, whose results were reused without training; "
            f"saved {saved['duplicate_seconds_saved']:.0f} s and {saved['duplicate_epochs_saved']:.0f} trial-epochs."
        )
    if search.multi_objective:
        lines += ["", *front_table(study.trials, search, selection)]
    lines += [
        "",
        f"## Top {len(leaders)} configurations",
        "",
        "| trial | " + " | ".join([*metrics, *names]) + " |",
        "|---|" + "---|" * (len(metrics) + len(names)),
    ]
    for t in leaders:
        values = objective_values(t, search.objective_list())
        cells = [f"{values[m]:.4f}" for m in metrics] + [str(t.params.get(n, "n/a")) for n in names]
        lines.append(f"| {t.number} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _log_plots(study: optuna.Study, search: SearchConfig) -> None:
    """Optuna's optimisation history, parameter importances and parallel coordinates, as PNG (with several
    objectives: of the first)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from optuna.visualization import matplotlib as optuna_plots

    first = search.objective_list()[0].metric
    target: dict[str, Any] = {"target": lambda t: t.values[0], "target_name": first} if search.multi_objective else {}
    plots: dict[str, Callable[..., Any]] = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        "param_importances.png": optuna_plots.plot_param_importances,
        "parallel_coordinate.png": optuna_plots.plot_parallel_coordinate,
    }
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():  # the matplotlib backend is marked experimental
                warnings.simplefilter("ignore")
                axes = plot(study, **target)
        except (ValueError, RuntimeError) as exc:  # e.g. importances need two or more complete trials
            logger.info("skipped %s: %s", name, exc)
            continue
        mlflow.log_figure(axes.get_figure(), f"plots/{name}")
        plt.close("all")


def log_sweep_summary(study: optuna.Study, search: SearchConfig) -> Selection:
    """Log the summary to the active (parent) run and return the trial `search.select` chooses.

    Safe to repeat when a resumed study finishes again: the selected trial goes into metrics and
    tags (params are immutable in MLflow) and the artifacts are overwritten.
    """
    import mlflow

    mlflow.log_metrics(trial_counts(study) | duplicate_savings(study) | early_stopping_savings(study))
    if not any(t.state.name == "COMPLETE" for t in study.trials):
        raise SweepError(f"no trial of study '{study.study_name}' completed; see the child runs' 'error' tags")
    selection = select(study.trials, search)  # `SweepError` too when every completed trial broke search.constraints
    best = selection.trial
    mlflow.set_tags({f"best.{k}": str(v) for k, v in best.params.items()})
    mlflow.log_metrics(
        {
            "best_trial_number": best.number,
            **{f"best_{k}": v for k, v in objective_values(best, search.objective_list()).items()},
            **{f"best_{k}": v for k, v in best.user_attrs.get("test_metrics", {}).items()},
        }
    )
    log_selection(selection)
    metrics = [o.metric for o in search.objective_list()]
    names = sorted({k for t in study.trials for k in t.params})
    columns = ["trial", "state", *metrics, *names, "duplicate_of", GAP_ATTR, EPOCHS_SAVED_ATTR, "run_id"]
    if search.constraints:
        columns.insert(2 + len(metrics), INFEASIBLE_TAG)
    rows = []
    for t in study.trials:
        values = objective_values(t, search.objective_list())
        infeasible = [t.user_attrs.get(INFEASIBLE_TAG)] if search.constraints else []
        rows.append(
            [
                t.number,
                t.state.name,
                *(values.get(m) for m in metrics),
                *infeasible,
                *(t.params.get(k) for k in names),  # None: the setting did not apply to that trial
                t.user_attrs.get(DUPLICATE_OF_ATTR),
                t.user_attrs.get(GAP_ATTR),
                t.user_attrs.get(EPOCHS_SAVED_ATTR),
                t.user_attrs.get(TRIAL_RUN_ATTR, ""),
            ]
        )
    mlflow.log_dict({"columns": columns, "data": rows}, SWEEP_SUMMARY_ARTIFACT)  # MLflow's table layout
    if search.multi_objective:
        log_pareto_front(study.trials, search, selection)
    mlflow.log_text(sweep_report(study, search, selection), SWEEP_REPORT_ARTIFACT)
    _log_plots(study, search)
    return selection


def log_selection(selection: Selection) -> None:
    """Say on the active run which rule chose which trial, and why."""
    import mlflow

    tags = {SELECTION_RULE_TAG: selection.rule, SELECTED_TRIAL_TAG: str(selection.trial.number), SELECTION_REASON_TAG: selection.reason}
    mlflow.set_tags({k: v[:5000] for k, v in tags.items()})


def describe_sweep_run(study: optuna.Study, search: SearchConfig, selection: Selection, version: tuple[str, str] | None) -> None:
    """Give the active (parent) run a description naming the selected trial and the registered version, and end its
    report with links that open the MLflow UI's model-training view."""
    import mlflow

    run = mlflow.active_run()
    assert run is not None
    best = selection.trial
    registered = f"; registered as {version[0]} v{version[1]}" if version else "; nothing registered"
    best_run = best.user_attrs.get(TRIAL_RUN_ATTR, "")
    values = ", ".join(f"{k}={v:.4f}" for k, v in objective_values(best, search.objective_list()).items())
    best_is = f"best trial {best.number} ({values}, run {best_run}; {selection.rule})"
    mlflow.set_tag(NOTE_TAG, f"Sweep of study '{study.study_name}': {best_is}{registered}.")
    log_selection(selection)
    links = "\n".join(f"- {line}" for line in current_links().lines((run.info.experiment_id, run.info.run_id), version))
    mlflow.log_text(f"{sweep_report(study, search, selection)}\n## Open in the MLflow UI\n\n{links}\n", SWEEP_REPORT_ARTIFACT)
