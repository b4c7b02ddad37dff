"""Early stopping against training every epoch, side by side on the default fraud sweep (`fraud-detection` preset).

Both arms run the same sweep (same sampler seed, trials and search space, so the same configurations in the same
order) into one temporary tracking store: `off` trains every trial's epochs and keeps the last adapter (the behaviour
without `training.early_stopping`); `on` stops after `--patience` evaluations without improvement and keeps the best
evaluation's adapter. Printed per arm: total trial-epochs trained, sweep wall time and the best trial's test F1, then
the ratios. The goal: at least 25 % fewer trial-epochs at equal or better test F1.

    python benchmarks/early_stopping.py                       # the preset's n_trials
    python benchmarks/early_stopping.py --n-trials 3 --epochs 4 --patience 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.config import EarlyStoppingConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 0.25  # at least 25 % less compute


def run_arm(name: str, overrides: dict[str, Any], stopping: EarlyStoppingConfig | None, store: Path) -> dict[str, float]:
    """One sweep of the preset with `overrides` and `stopping`; its trial-epochs (from the trials' runs), wall time and
    best test F1."""
    import mlflow
    from mlflow import MlflowClient

    from mlops.config import load_config
    from mlops.search import SweepOptions, run_sweep

    config = load_config("fraud-detection", {**overrides, "experiment_name": f"early-stopping-{name}"})
    config = replace(config, training=replace(config.training, early_stopping=stopping))
    config.source_file = load_config("fraud-detection").source_file  # not an init field: `replace` drops it
    start = time.perf_counter()
    run_sweep(config, SweepOptions(storage=f"sqlite:///{store / f'optuna-{name}.db'}", study_name=f"early-stopping-{name}"))
    wall = time.perf_counter() - start
    client = MlflowClient()
    experiment = client.get_experiment_by_name(f"early-stopping-{name}")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags and r.info.run_name.startswith("sweep"))
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id and r.info.run_name.startswith("trial-")]
    epochs = sum(r.data.metrics.get("epochs_run", float(r.data.params.get("epochs", 0))) for r in trials)
    mlflow.end_run()
    return {
        "trials": float(len(trials)),
        "trial_epochs": epochs,
        "wall_seconds": wall,
        "best_test_f1": parent.data.metrics.get("best_test_f1", float("nan")),
        "best_eval_f1": parent.data.metrics.get("best_eval_f1", float("nan")),
        "epochs_saved": parent.data.metrics.get("epochs_saved_by_early_stopping", 0.0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-trials", type=int, default=None, help="default: the preset's search.n_trials")
    parser.add_argument("--patience", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="fix training.epochs for every trial (default: the preset's space)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlops-bench-es-") as tmp:
        store = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
        os.chdir(store)
        from mlops.config import EarlyStoppingConfig

        common = {"search.n_trials": args.n_trials, "training.epochs": args.epochs}  # None: the preset's
        off = run_arm("off", common, None, store)
        on = run_arm("on", common, EarlyStoppingConfig(patience=args.patience), store)

    print(f"{'':14}{'off (every epoch, last adapter)':>34}{'on (patience ' + str(args.patience) + ', best adapter)':>34}")
    for key in ("trials", "trial_epochs", "wall_seconds", "best_eval_f1", "best_test_f1", "epochs_saved"):
        print(f"{key:14}{off[key]:>34.4g}{on[key]:>34.4g}")
    saved = 1 - on["trial_epochs"] / off["trial_epochs"] if off["trial_epochs"] else 0.0
    print(f"compute saved: {saved:.1%} of trial-epochs, wall time x{on['wall_seconds'] / off['wall_seconds']:.2f}")
    delta = on["best_test_f1"] - off["best_test_f1"]
    met = saved >= GOAL and delta >= 0
    print(f"best test F1: {delta:+.4f}; goal (>= {GOAL:.0%} less compute at equal or better test F1): {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
