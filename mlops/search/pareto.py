"""The Pareto front of a study with several objectives, on the sweep's parent run: `pareto_front.json`, the plot
`plots/pareto_front.png`, the metric `pareto_front_size`, a table for the report, and the tag `mlops.pareto_front`
on each completed trial's run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops.config import SearchConfig
from mlops.search.duplicates import DUPLICATE_OF_ATTR
from mlops.search.selection import Selection, feasible, objective_values, pareto_front
from mlops.tracking import INFEASIBLE_TAG, PARETO_FRONT_ARTIFACT, PARETO_FRONT_TAG, PARETO_PLOT_ARTIFACT, TRIAL_RUN_ATTR

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


def front_document(trials: Sequence[optuna.trial.FrozenTrial], search: SearchConfig, selection: Selection) -> dict[str, Any]:
    """What `pareto_front.json` holds: the objectives, the selection, and every trial on the front."""
    objectives = search.objective_list()
    front = pareto_front(trials, objectives)
    return {
        "objectives": [{"metric": o.metric, "direction": o.sense} for o in objectives],
        "selected_trial": selection.trial.number,
        "selection_rule": selection.rule,
        "selection_reason": selection.reason,
        "trials": [
            {
                "trial": t.number,
                "run_id": t.user_attrs.get(TRIAL_RUN_ATTR, ""),
                "objectives": objective_values(t, objectives),
                "params": dict(t.params),
            }
            for t in front
        ],
    }


def front_table(trials: Sequence[optuna.trial.FrozenTrial], search: SearchConfig, selection: Selection) -> list[str]:
    """The report's markdown section: the front's trials with their objectives and parameters, the selected marked."""
    objectives = search.objective_list()
    front = pareto_front(trials, objectives)
    names = sorted({k for t in front for k in t.params})
    metrics = [o.metric for o in objectives]
    lines = [
        f"## Pareto front ({len(front)} trials)",
        "",
        "| trial | " + " | ".join([*metrics, *names]) + " | selected |",
        "|---|" + "---|" * (len(metrics) + len(names) + 1),
    ]
    for t in front:
        values = objective_values(t, objectives)
        cells = [f"{values[m]:.4g}" for m in metrics] + [str(t.params.get(n, "n/a")) for n in names]
        lines.append(f"| {t.number} | " + " | ".join(cells) + f" | {'yes' if t.number == selection.trial.number else ''} |")
    return lines


def log_pareto_front(trials: Sequence[optuna.trial.FrozenTrial], search: SearchConfig, selection: Selection) -> None:
    """Log the front on the active (parent) run and tag each completed trial's run on it (true) or off it (false)."""
    import mlflow

    document = front_document(trials, search, selection)
    mlflow.log_dict(document, PARETO_FRONT_ARTIFACT)
    mlflow.log_metric("pareto_front_size", len(document["trials"]))
    on_front = {row["trial"] for row in document["trials"]}
    client = mlflow.MlflowClient()
    for t in trials:
        run_id = t.user_attrs.get(TRIAL_RUN_ATTR)
        if t.state.name == "COMPLETE" and run_id:
            client.set_tag(run_id, PARETO_FRONT_TAG, str(t.number in on_front).lower())
    _log_front_plot(trials, search, selection)


def _log_front_plot(trials: Sequence[optuna.trial.FrozenTrial], search: SearchConfig, selection: Selection) -> None:
    """All completed trials on the first two objectives (infeasible ones apart), the front as a line, the selected
    one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    objectives = search.objective_list()
    x_name, y_name = objectives[0].metric, objectives[1].metric
    done = [t for t in trials if t.state.name == "COMPLETE" and t.values is not None and DUPLICATE_OF_ATTR not in t.user_attrs]

    def points(group: Sequence[optuna.trial.FrozenTrial]) -> tuple[list[float], list[float]]:
        values = [objective_values(t, objectives) for t in group]
        return [v[x_name] for v in values], [v[y_name] for v in values]

    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    axes.scatter(*points([t for t in done if feasible(t)]), color="tab:blue", alpha=0.6, label="trials")
    broken = [t for t in done if not feasible(t) or INFEASIBLE_TAG in t.user_attrs]
    if broken:
        axes.scatter(*points(broken), color="tab:gray", marker="x", label="infeasible (search.constraints)")
    front = sorted(pareto_front(trials, objectives), key=lambda t: objective_values(t, objectives)[x_name])
    axes.plot(*points(front), color="tab:red", marker="o", label=f"Pareto front ({len(front)})")
    axes.scatter(*points([selection.trial]), s=220, marker="*", color="gold", edgecolors="black", zorder=5, label="selected")
    (x,), (y,) = points([selection.trial])
    axes.annotate(f"trial {selection.trial.number} ({selection.rule})", (x, y), xytext=(8, 8), textcoords="offset points")
    axes.set_xlabel(f"{x_name} ({objectives[0].sense})")
    axes.set_ylabel(f"{y_name} ({objectives[1].sense})")
    more = f"; {len(objectives) - 2} more objectives not drawn" if len(objectives) > 2 else ""
    axes.set_title(f"Pareto front{more}")
    axes.legend(loc="best", fontsize="small")
    mlflow.log_figure(figure, PARETO_PLOT_ARTIFACT)
    plt.close(figure)
