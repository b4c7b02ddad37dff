"""Search: the nested Optuna sweep (one MLflow parent run per study; `trial` is where a trial becomes a child run),
the shared study across workers, search spaces, samplers and pruners, the one rule that selects the winner (and the
Pareto front of several objectives), the sweep report, and the staged pipeline that `main` runs."""

from mlops.search.console import NullConsole, PlainConsole, RichConsole, SweepConsole, SweepInfo, make_console
from mlops.search.pipeline import PipelineOptions, PipelineResult, run_main
from mlops.search.registration import register_and_gate
from mlops.search.selection import Selection, pareto_front, select
from mlops.search.sweep import SweepOptions, SweepResult, default_storage, run_sweep
from mlops.search.trial import SweepLink, run_trial_as_child_run

__all__ = [
    "NullConsole",
    "PipelineOptions",
    "PipelineResult",
    "PlainConsole",
    "RichConsole",
    "Selection",
    "SweepConsole",
    "SweepInfo",
    "SweepLink",
    "SweepOptions",
    "SweepResult",
    "default_storage",
    "make_console",
    "pareto_front",
    "register_and_gate",
    "run_main",
    "run_sweep",
    "run_trial_as_child_run",
    "select",
]
