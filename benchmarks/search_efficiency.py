"""Search efficiency (P4): trial-epochs that TPE + Hyperband and random + median spend to match a full grid's best.

Task: the packaged demo fraud classification with the tiny model (`tiny-random-bert`), whole
epochs (no `max_steps`), so each trial reports the validation metric once per epoch and the
pruners act there. Search space: learning_rate x lora_r, both categorical, so every method
searches exactly the points the grid visits.

For each seed (`training.seed`, which seeds both the training and the first worker's sampler):

1. a full grid sweep (sampler grid, pruner none, n_trials = grid size) gives the grid's best
   validation metric (eval_f1) and its full cost in trial-epochs (every trial runs all epochs);
2. each method sweeps with the same n_trials and the same seed; its cost to reach is the sum of
   trial-epochs (the last epoch each trial reported, as `mlops.search.report` counts compute) over
   the trials in order up to and including the first COMPLETE trial whose value is >= the grid's
   best. A run that never gets there is charged its whole cost and marked as not reached.

Reported per method: the mean of (cost to reach / grid's full cost) over seeds, and how often the
grid best was reached. Goal: TPE + Hyperband <= 0.35. Also printed: the guide's claim that Bayesian
search converges 12 % faster than random, as measured here: (random cost - TPE cost) / random cost,
with the mean costs to reach in trial-epochs (the two methods also differ in their pruner).

Every sweep goes through `mlops.search.sweep.run_sweep` with MLflow tracking to a temporary SQLite file,
as a user's would. Results: a markdown table on stdout and benchmarks/results/search_efficiency.json.

    python benchmarks/search_efficiency.py                       # 3 lr x 2 lora_r grid, 3 epochs, seeds 0 1 2
    python benchmarks/search_efficiency.py --seeds 0 --lrs 1e-3 3e-3 --ranks 4 16 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = {"tpe+hyperband": ("tpe", "hyperband"), "random+median": ("random", "median"), "tpe+none": ("tpe", "none")}
METHODS |= {"random+none": ("random", "none"), "grid+none": ("grid", "none")}
TOLERANCE = 1e-9  # same point, same seed: the same value; allow for float noise only


def write_config(folder: Path, model: str, epochs: int, lrs: list[float], ranks: list[int]) -> Path:
    """tests/configs/tiny.yaml with whole epochs, the benchmark's search space and CPU training."""
    import yaml

    data = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    data["name"] = "search-efficiency"
    data["model"]["source"] = model
    data["training"].pop("max_steps", None)
    data["training"].update({"epochs": epochs, "logging_steps": 10, "device": "cpu"})
    data["search"]["space"] = {
        "learning_rate": {"type": "categorical", "choices": lrs},
        "lora_r": {"type": "categorical", "choices": ranks},
    }
    data["registry"]["policy"] = str(ROOT / "tests" / "registry" / "tiny-detector.yaml")
    path = folder / "search-efficiency.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def epochs_run(trial: Any) -> int:
    """Trial-epochs a trial spent: the last epoch it reported (as `mlops.search.report._epochs`)."""
    return max(trial.intermediate_values, default=0)


def sweep(config_path: Path, storage: str, study_name: str, sampler: str, pruner: str, seed: int, n_trials: int) -> dict[str, Any]:
    """One `run_sweep`, then the study read back: its trials in order, with state, value and epochs."""
    import mlflow
    import optuna

    from mlops.config import load_config
    from mlops.search import SweepOptions, run_sweep

    overrides = {"search.sampler": sampler, "search.pruner": pruner, "training.seed": seed, "search.n_trials": n_trials}
    config = load_config(str(config_path), overrides)
    note = ""
    start = time.perf_counter()
    try:
        run_sweep(config, SweepOptions(storage=storage, study_name=study_name, promote=False))
    except RuntimeError as exc:
        # Optuna's GridSampler calls study.stop() in after_trial once the grid is exhausted, which
        # raises outside study.optimize; mlops calls tell() itself, so a full grid ends here.
        if "Study.stop" not in str(exc):
            raise
        note = "run_sweep raised RuntimeError from GridSampler's study.stop() after the last trial"
    wall = time.perf_counter() - start
    while mlflow.active_run() is not None:
        mlflow.end_run()
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs": epochs_run(t),
            "params": t.params,
            "seconds": t.duration.total_seconds() if t.duration is not None else None,
        }
        for t in sorted(study.trials, key=lambda t: t.number)
    ]
    return {"study_name": study_name, "sampler": sampler, "pruner": pruner, "seed": seed, "wall_s": wall, "trials": trials, "note": note}


def cost_to_reach(trials: list[dict[str, Any]], target: float) -> tuple[int, bool, int | None]:
    """Trial-epochs up to and including the first COMPLETE trial with value >= target (else all of them)."""
    spent = 0
    for t in trials:
        spent += t["epochs"]
        if t["state"] == "COMPLETE" and t["value"] is not None and t["value"] >= target - TOLERANCE:
            return spent, True, t["number"]
    return spent, False, None


def best_complete(trials: list[dict[str, Any]]) -> float:
    values = [t["value"] for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    if not values:
        raise SystemExit("the grid sweep completed no trial")
    return max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random-bert")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (the pruners' max resource)")
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3], help="learning_rate grid values")
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 16], help="lora_r grid values")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training.seed values (one grid per seed)")
    parser.add_argument("--methods", nargs="+", default=["tpe+hyperband", "random+median"], choices=sorted(METHODS))
    parser.add_argument("--trials", type=int, default=None, help="trials per method run (default: the grid size)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_efficiency.json")
    args = parser.parse_args()

    import mlflow
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid_size = len(args.lrs) * len(args.ranks)
    n_trials = args.trials or grid_size
    out = args.out.resolve()
    started = time.perf_counter()
    grids: dict[int, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlops-bench-search-") as tmp:
        work = Path(tmp)
        cwd = Path.cwd()
        os.chdir(work)  # MLflow's default artifact root is relative to the working directory
        try:
            config_path = write_config(work, args.model, args.epochs, args.lrs, args.ranks)
            tracking = f"sqlite:///{work / 'mlflow.db'}"
            os.environ["MLFLOW_TRACKING_URI"] = tracking
            mlflow.set_tracking_uri(tracking)
            storage = f"sqlite:///{work / 'optuna.db'}"
            for seed in args.seeds:
                grid = sweep(config_path, storage, f"grid-s{seed}", "grid", "none", seed, grid_size)
                grid["best"] = best_complete(grid["trials"])
                grid["cost"] = sum(t["epochs"] for t in grid["trials"])
                grids[seed] = grid
                print(f"seed {seed} grid: best eval_f1 {grid['best']:.4f}, {grid['cost']} trial-epochs, {grid['wall_s']:.0f} s", flush=True)
                for method in args.methods:
                    sampler, pruner = METHODS[method]
                    run = sweep(config_path, storage, f"{method.replace('+', '-')}-s{seed}", sampler, pruner, seed, n_trials)
                    spent, reached, at = cost_to_reach(run["trials"], grid["best"])
                    run |= {
                        "method": method,
                        "cost_to_reach": spent,
                        "reached": reached,
                        "reached_at_trial": at,
                        "ratio": spent / grid["cost"],
                        "total_epochs": sum(t["epochs"] for t in run["trials"]),
                        "best": max((t["value"] for t in run["trials"] if t["state"] == "COMPLETE"), default=None),
                        "n_pruned": sum(t["state"] == "PRUNED" for t in run["trials"]),
                    }
                    runs.append(run)
                    where = f"reached at trial {at}" if reached else "NOT reached"
                    print(
                        f"seed {seed} {method}: {where}, {spent} trial-epochs to reach (ratio {run['ratio']:.3f}), "
                        f"{run['total_epochs']} in all, {run['n_pruned']} pruned, {run['wall_s']:.0f} s",
                        flush=True,
                    )
        finally:
            os.chdir(cwd)
    total_wall = time.perf_counter() - started

    summary: dict[str, dict[str, Any]] = {}
    for method in args.methods:
        mine = [r for r in runs if r["method"] == method]
        summary[method] = {
            "mean_ratio": statistics.mean(r["ratio"] for r in mine),
            "reached": sum(r["reached"] for r in mine),
            "runs": len(mine),
            "mean_cost_to_reach": statistics.mean(r["cost_to_reach"] for r in mine),
            "mean_total_epochs": statistics.mean(r["total_epochs"] for r in mine),
            "mean_wall_s": statistics.mean(r["wall_s"] for r in mine),
        }
    grid_cost = statistics.mean(g["cost"] for g in grids.values())
    grid_wall = statistics.mean(g["wall_s"] for g in grids.values())

    print()
    print(f"model={args.model} epochs={args.epochs} grid={len(args.lrs)} lr x {len(args.ranks)} lora_r = {grid_size} points")
    print(f"trials per run={n_trials} seeds={' '.join(map(str, args.seeds))} total wall {total_wall:.0f} s")
    print()
    print("| seed | grid best eval_f1 | grid trial-epochs | " + " | ".join(f"{m} to reach (ratio)" for m in args.methods) + " |")
    print("|---|---|---|" + "---|" * len(args.methods))
    for seed, grid in grids.items():
        cells = []
        for method in args.methods:
            run = next(r for r in runs if r["method"] == method and r["seed"] == seed)
            mark = "" if run["reached"] else " not reached"
            cells.append(f"{run['cost_to_reach']} ({run['ratio']:.2f}){mark}")
        print(f"| {seed} | {grid['best']:.4f} | {grid['cost']} | " + " | ".join(cells) + " |")
    print()
    print("| method | mean trial-epochs to reach ÷ grid cost | reached grid best | mean trial-epochs to reach", end="")
    print(" | mean trial-epochs spent | mean wall s |")
    print("|---|---|---|---|---|---|")
    print(f"| grid+none (full) | 1.000 | {len(grids)}/{len(grids)} | {grid_cost:.1f} | {grid_cost:.1f} | {grid_wall:.0f} |")
    for method, s in summary.items():
        print(
            f"| {method} | {s['mean_ratio']:.3f} | {s['reached']}/{s['runs']} | {s['mean_cost_to_reach']:.1f} "
            f"| {s['mean_total_epochs']:.1f} | {s['mean_wall_s']:.0f} |"
        )
    print()
    result: dict[str, Any] = {}
    if "tpe+hyperband" in summary:
        ratio = summary["tpe+hyperband"]["mean_ratio"]
        result["goal_tpe_hyperband_ratio_le_0.35"] = ratio <= 0.35
        print(f"TPE+Hyperband mean ratio {ratio:.3f}  (goal <= 0.35: {'met' if ratio <= 0.35 else 'NOT met'})")
    if "tpe+hyperband" in summary and "random+median" in summary:
        rnd, tpe = summary["random+median"]["mean_cost_to_reach"], summary["tpe+hyperband"]["mean_cost_to_reach"]
        faster = (rnd - tpe) / rnd if rnd else 0.0
        result["bayesian_faster_than_random"] = faster
        print(
            f"(random+median - TPE+Hyperband) / random+median, mean trial-epochs to reach: ({rnd:.1f} - {tpe:.1f}) / {rnd:.1f} "
            f"= {faster:+.1%}  (the guide claims Bayesian converges 12 % faster than random)"
        )
        if n_trials <= 10:
            print("note: TPESampler's default n_startup_trials is 10, so with <= 10 trials TPE samples at random throughout")

    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "search_efficiency",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "grid_size": grid_size,
        "n_trials": n_trials,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "total_wall_s": total_wall,
        "grids": {str(k): v for k, v in grids.items()},
        "runs": runs,
        "summary": summary,
        **result,
    }
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
