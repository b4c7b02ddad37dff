"""Parallel scaling (P5): trials per hour with 2 sweep workers ÷ 1 worker on one PostgreSQL-backed study.

Each case is a fresh study with the same total budget N on a throwaway PostgreSQL server
(tests/services.py). Workers are separate processes, as a team would start them:

    python -m mlops sweep --config <cfg> --storage <postgres>/optuna --study-name <unique> --n-trials N --promote false

1 worker runs all N trials; 2 workers are started together and share the N trials (the claim is
atomic, so the budget is exact). Every worker uses one torch thread (OMP_NUM_THREADS=1,
MKL_NUM_THREADS=1, training.device cpu), so on a 2-core machine 2 single-threaded workers is the
fair comparison. MLflow tracks to a temporary SQLite file whose schema is created before the
workers start.

Measured: wall time from launching the workers to the last one exiting; trials/hour = N / wall;
the scaling is (N / wall with 2) ÷ (N / wall with 1). Goal >= 1.8. Also reported from the
study: each worker's start-up overhead (launch to its first trial's start), the tail (last
trial's end to the last process exiting) and the trial phase (first trial start to last trial
end), so the fixed per-process cost can be told apart from the trial throughput.

Results: a markdown table on stdout and benchmarks/results/parallel_scaling.json.

    python benchmarks/parallel_scaling.py                       # N=8 trials of 30 steps, 1 round
    python benchmarks/parallel_scaling.py --trials 6 --max-steps 20 --rounds 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_config(folder: Path, model: str, max_steps: int, heartbeat_interval: int | None) -> Path:
    """tests/configs/tiny.yaml, trials of `max_steps` steps on CPU, random sampler, no pruner."""
    import yaml

    data = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    data["name"] = "parallel-scaling"
    data["model"]["source"] = model
    data["training"].update({"epochs": 1, "max_steps": max_steps, "logging_steps": 10, "device": "cpu"})
    data["search"].update({"sampler": "random", "pruner": "none"})
    if heartbeat_interval is not None:
        data["search"]["heartbeat_interval"] = heartbeat_interval
    data["registry"]["policy"] = str(ROOT / "tests" / "registry" / "tiny-detector.yaml")
    path = folder / "parallel-scaling.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def worker_env(tracking: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),  # this checkout's mlops
    }
    for inherited in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(inherited, None)
    return env


def run_case(workers: int, n_trials: int, config: Path, storage: str, env: dict[str, str], work: Path) -> dict[str, Any]:
    """Start `workers` processes on a fresh study and wait for all of them; timings from the study."""
    import optuna

    from mlops.search.study import normalize_url

    name = f"scale-{workers}w-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "mlops", "sweep", "--config", str(config), "--storage", storage, "--study-name", name]
    cmd += ["--n-trials", str(n_trials), "--promote", "false"]
    logs = [work / f"{name}-{i}.log" for i in range(workers)]
    load_before = os.getloadavg()[0]  # other work on the machine skews the comparison
    launched = dt.datetime.now()  # Optuna stores naive local datetimes
    start = time.perf_counter()
    procs = []
    for log in logs:
        with log.open("w") as handle:
            procs.append(subprocess.Popen(cmd, env=env, cwd=work, stdout=handle, stderr=subprocess.STDOUT))
    exits: dict[int, float] = {}
    while len(exits) < len(procs):
        for i, p in enumerate(procs):
            if i not in exits and p.poll() is not None:
                exits[i] = time.perf_counter() - start
        time.sleep(0.05)
    wall = max(exits.values())
    for p, log in zip(procs, logs, strict=True):
        if p.returncode != 0:
            raise SystemExit(f"a worker exited {p.returncode}; its output ends:\n{log.read_text()[-4000:]}")

    study = optuna.load_study(study_name=name, storage=normalize_url(storage))
    trials = study.trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) != n_trials:
        raise SystemExit(f"study {name}: {len(complete)} complete trials of {len(trials)}, expected {n_trials}")
    first_start = min(t.datetime_start for t in trials if t.datetime_start)
    last_end = max(t.datetime_complete for t in trials if t.datetime_complete)
    by_worker: dict[str, list[Any]] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs.get("mlflow_worker_run_id", "?"), []).append(t)
    startup = sorted((min(t.datetime_start for t in ts) - launched).total_seconds() for ts in by_worker.values())
    durations = [t.duration.total_seconds() for t in complete if t.duration is not None]
    return {
        "workers": workers,
        "study_name": name,
        "n_trials": n_trials,
        "wall_s": wall,
        "exit_s": [exits[i] for i in range(len(procs))],
        "trials_per_hour": n_trials / wall * 3600,
        "startup_s": startup,  # launch -> each worker's first trial start
        "trial_phase_s": (last_end - first_start).total_seconds(),
        "tail_s": wall - (last_end - launched).total_seconds(),  # last trial end -> last process exit
        "mean_trial_s": statistics.mean(durations),
        "trials_by_worker": sorted(len(ts) for ts in by_worker.values()),
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random-bert")
    parser.add_argument("--trials", type=int, default=8, help="total trials per study (N)")
    parser.add_argument("--max-steps", type=int, default=30, help="optimizer steps per trial")
    parser.add_argument("--workers", type=int, default=2, help="the parallel case's worker count")
    parser.add_argument("--rounds", type=int, default=1, help="alternating 1-worker / parallel rounds; medians are reported")
    parser.add_argument("--heartbeat-interval", type=int, default=None, help="search.heartbeat_interval (default: the config's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "parallel_scaling.json")
    args = parser.parse_args()

    import optuna
    from mlflow import MlflowClient

    from tests.services import postgres

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = args.out.resolve()
    cases: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-scale-") as tmp, postgres(databases=("optuna",)) as server:
        work = Path(tmp)
        config = write_config(work, args.model, args.max_steps, args.heartbeat_interval)
        tracking = f"sqlite:///{work / 'mlflow.db'}"
        MlflowClient(tracking).search_experiments()  # create the tracking schema once, before the workers race to
        env = worker_env(tracking)
        for _ in range(args.rounds):
            for workers in (1, args.workers):
                case = run_case(workers, args.trials, config, f"{server}/optuna", env, work)
                cases.append(case)
                print(
                    f"{workers} worker(s): {case['wall_s']:.1f} s for {args.trials} trials, start-up "
                    + ", ".join(f"{s:.1f}" for s in case["startup_s"])
                    + f" s, trials by worker {case['trials_by_worker']}"
                    + f", load {case['loadavg_1min_before']:.1f} -> {case['loadavg_1min_after']:.1f}",
                    flush=True,
                )
    total_wall = time.perf_counter() - started

    def median(workers: int, key: str) -> float:
        return statistics.median(c[key] for c in cases if c["workers"] == workers)

    def median_startup(workers: int) -> float:
        return statistics.median(s for c in cases if c["workers"] == workers for s in c["startup_s"])

    one, many = 1, args.workers
    scaling = median(one, "wall_s") / median(many, "wall_s")
    phase_scaling = median(one, "trial_phase_s") / median(many, "trial_phase_s")

    print()
    print(f"model={args.model} N={args.trials} trials of {args.max_steps} steps, 1 torch thread per worker, cpus={os.cpu_count()}")
    print(f"rounds={args.rounds} (medians), total wall {total_wall:.0f} s")
    print()
    print("| workers | wall s | trials/hour | start-up s (launch → first trial) | trial phase s | tail s | mean trial s |")
    print("|---|---|---|---|---|---|---|")
    for w in (one, many):
        print(
            f"| {w} | {median(w, 'wall_s'):.1f} | {median(w, 'trials_per_hour'):.0f} | {median_startup(w):.1f} "
            f"| {median(w, 'trial_phase_s'):.1f} | {median(w, 'tail_s'):.1f} | {median(w, 'mean_trial_s'):.2f} |"
        )
    print()
    print(f"trials/hour with {many} workers ÷ 1 worker: {scaling:.2f}  (goal >= 1.8: {'met' if scaling >= 1.8 else 'NOT met'})")
    print(f"trial phase only (first trial start → last trial end): {phase_scaling:.2f}")

    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "parallel_scaling",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "total_wall_s": total_wall,
        "cases": cases,
        "scaling": scaling,
        "trial_phase_scaling": phase_scaling,
        "goal_scaling_ge_1.8": scaling >= 1.8,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
