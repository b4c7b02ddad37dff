"""The search benchmark's table: the per-epoch validation curve of every point of a grid, for several training seeds.

Built once (minutes on CPU) and committed as benchmarks/data/search_table.json, so that
`benchmarks/search_efficiency.py` can replay samplers and pruners against it without training.

Task: the packaged fraud demo with `tiny-random-bert`, whole epochs, validation F1 (eval_f1) after
each epoch, exactly as a sweep's trial reports it to its pruner (`mlops.train.fit` with a reporter).
The data is loaded and checked once (`mlops.train.prepare`), with the first 480 training rows (so
that the table builds in about 25 minutes on a shared 2-core machine) and the whole validation split
(200 texts, whose noise is part of what the benchmark measures); each (point, seed) then trains under
its own MLflow run in a throwaway SQLite store, one torch thread.

Grid (default, 48 points): learning_rate 4 x lora_r 2 x batch_size 2 x warmup_ratio 3; 4 epochs; seeds 0 1 2.

    nice python benchmarks/search_table.py                           # the committed table (23 min here)
    python benchmarks/search_table.py --seeds 0 --epochs 2 --out /tmp/t.json --train-rows 200
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
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

GRID: dict[str, list[Any]] = {
    "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3],
    "lora_r": [4, 16],
    "batch_size": [16, 32],
    "warmup_ratio": [0.0, 0.1, 0.3],
}
METRIC = "eval_f1"


def train_curve(config: Any, prepared: Any, params: dict[str, Any], seed: int, scratch: Path) -> tuple[list[float], float]:
    """One training of `params` with `seed`: the metric after each epoch, and the training seconds."""
    import mlflow

    from mlops.train.loop import fit
    from mlops.train.tasks import TaskInputs, task_for

    trial = config.with_params(params)
    trial.training.seed = seed  # with_params made `training` a fresh copy
    curve: list[float] = []

    def report(value: float, epoch: int) -> None:
        if epoch > len(curve):  # one point per epoch (the final evaluate() repeats the last)
            curve.append(value)

    with mlflow.start_run():
        inputs = TaskInputs(trial, trial.training, trial.generation, prepared.data, prepared.source, prepared.tokenizer)
        result = fit(task_for(trial.task), inputs, scratch / "adapter", report)
    return curve, result.train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random-bert")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-rows", type=int, default=480, help="training rows used (dataset.max_samples)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data" / "search_table.json")
    args = parser.parse_args()

    import mlflow
    import torch
    import yaml

    from mlops.config import load_config
    from mlops.train import prepare

    torch.set_num_threads(1)
    points = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlops-search-table-") as tmp:
        work = Path(tmp)
        data = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
        data["name"] = "search-table"
        data["model"]["source"] = args.model
        data["training"].pop("max_steps", None)
        data["training"].update({"epochs": args.epochs, "logging_steps": 50, "device": "cpu"})
        if args.train_rows:
            data["dataset"]["max_samples"] = args.train_rows
        data["search"]["space"] = {}
        (work / "table.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        config = load_config(str(work / "table.yaml"))
        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        mlflow.set_experiment("search-table")
        prepared = prepare(config)
        for i, params in enumerate(points):
            row: dict[str, Any] = {"params": params, "curves": {}, "train_seconds": {}}
            for seed in args.seeds:
                curve, seconds = train_curve(config, prepared, params, seed, work)
                row["curves"][str(seed)] = curve
                row["train_seconds"][str(seed)] = round(seconds, 3)
            rows.append(row)
            mean_last = sum(c[-1] for c in row["curves"].values()) / len(args.seeds)
            print(
                f"{i + 1}/{len(points)} {params}: mean final {METRIC} {mean_last:.4f} ({time.perf_counter() - started:.0f} s)", flush=True
            )
    payload = {
        "benchmark": "search_table",
        "metric": METRIC,
        "direction": "maximize",
        "model": args.model,
        "dataset": "demo:fraud",
        "epochs": args.epochs,
        "seeds": args.seeds,
        "train_rows": args.train_rows,
        "grid": GRID,
        "points": rows,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"table: {args.out} ({len(rows)} points x {len(args.seeds)} seeds x {args.epochs} epochs, {payload['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
