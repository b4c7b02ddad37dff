"""P14: inference cost as a tuning goal. A two-objective sweep (validation F1 up, served latency p95 down) over the
guide's hyperparameters and the knobs that change cost (preset `fraud-detection-cost`: dropped top layers, merged
LoRA weights, int8 linear layers), then, side by side in one process, the served model of the max-quality trial
against the one the preset's rule selects (`within: 1 point of eval_f1, then the lowest latency`): latency p50/p95 per
message at batch 1 (the two interleaved, input by input), examples per second at the serving batch size, the bytes
the served model holds, and the macro F1 of each served model on the whole test split (the served model's own
predictions: a quantised model is scored as quantised, not by its training run's figure).

For reference, the same side by side also holds the best trial of the quality-only default sweep (preset
`fraud-detection`: the guide's hyperparameters, no cost knobs, every model served as stored), which is what a team
would ship without cost as an objective.

Last line: `P14 cost ratio <selected p95 / max-quality p95> quality delta <selected - max-quality test F1>`.
Goal: cost ratio <= 0.60 (the guide's 40 % lower inference cost) at a quality loss of at most 0.01.

    python benchmarks/inference_cost.py                 # the preset's 12 trials, 64 test messages, 5 timing passes
    python benchmarks/inference_cost.py --n-trials 6 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESET = "fraud-detection-cost"
REFERENCE = "fraud-detection"  # quality only, no cost knobs
COST_GOAL = 0.60
QUALITY_LOSS = 0.01


def _served(run_id: str, scratch: Path) -> tuple[Any, dict[str, str]]:
    """The trial's served model (through the pyfunc class `mlflow models serve` runs) and its run's params."""
    import mlflow
    from mlflow import MlflowClient

    from mlops.serving import load_servable
    from mlops.tracking.names import ADAPTER_ARTIFACT

    adapter = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ADAPTER_ARTIFACT, dst_path=str(scratch / run_id)))
    return load_servable(adapter), MlflowClient().get_run(run_id).data.params


def _macro_f1(servable: Any, texts: list[str], labels: list[str]) -> float:
    import pandas as pd
    from sklearn.metrics import f1_score

    predicted = servable.predict(None, pd.DataFrame({"text": texts}))["label"].tolist()
    return float(f1_score(labels, predicted, average="macro"))


def sweep(preset: str, n_trials: int | None, store: Path, quality: str = "eval_f1") -> tuple[Any, Any, Any]:
    """The preset's sweep; its config, the max-quality trial (by `quality`) and the trial its rule selects."""
    from dataclasses import replace

    import optuna

    from mlops.config import load_config
    from mlops.search import SweepOptions, run_sweep, select

    config = load_config(preset, {"search.n_trials": n_trials})
    storage = f"sqlite:///{store / 'optuna.db'}"
    start = time.perf_counter()
    result = run_sweep(config, SweepOptions(storage=storage, study_name=preset, promote=False))
    trials = optuna.load_study(study_name=preset, storage=storage).get_trials(deepcopy=False)
    best = select(trials, replace(config.search, select=f"best:{quality}"))
    chosen = select(trials, config.search)
    assert chosen.trial.number == result.best_trial, "the benchmark's selection is the sweep's"
    print(
        f"{preset}: {len(trials)} trials in {time.perf_counter() - start:.0f} s; max quality: trial {best.trial.number}; "
        f"selected: trial {chosen.trial.number} ({chosen.reason})"
    )
    return config, best.trial, chosen.trial


def side_by_side(config: Any, arms: dict[str, Any], store: Path, examples: int, repeats: int) -> dict[str, dict[str, float]]:
    """Each arm's served model timed against the other's in this process, its size, and its quality on test."""
    from mlops.data import load_task_data
    from mlops.evaluate import latency_metrics, time_side_by_side
    from mlops.search.seeds import adapter_run_id
    from mlops.serving import served_size
    from mlops.tasks import INFER_LATENCY_P50, INFER_LATENCY_P95, SERVING_BYTES

    data = load_task_data(config.task, config.dataset, Path(config.source_file).parent, config.training.seed)
    frame = data.serving_frame("test", examples)
    rows = [frame.iloc[[i]].reset_index(drop=True) for i in range(len(frame))]
    served = {name: _served(adapter_run_id(trial), store) for name, trial in arms.items()}
    timings = time_side_by_side([lambda row, s=s: s.predict(None, row) for s, _ in served.values()], rows, 4, repeats)
    batch: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(3):  # the whole sample in one call, as serving batches it, alternating
        for name, (servable, _) in served.items():
            began = time.perf_counter()
            servable.predict(None, frame)
            batch[name].append(time.perf_counter() - began)
    labels = [data.label_names[i] for i in data.test.labels]
    figures: dict[str, dict[str, float]] = {}
    for (name, (servable, params)), seconds in zip(served.items(), timings, strict=True):
        latency = latency_metrics(seconds)
        figures[name] = {
            "trial": float(arms[name].number),
            "eval_f1": float(arms[name].values[0]),
            "test_f1": _macro_f1(servable, data.test.texts, labels),
            "p50_ms": latency[INFER_LATENCY_P50],
            "p95_ms": latency[INFER_LATENCY_P95],
            "examples_per_s": len(frame) / statistics.median(batch[name]),
            "serving_mb": served_size(servable)[SERVING_BYTES] / 2**20,
        }
        knobs = {k: params.get(k) for k in ("drop_layers", "serving.merge_adapter", "serving.precision", "lora_r", "learning_rate")}
        print(f"{name}: trial {arms[name].number}, {knobs}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-trials", type=int, default=None, help="default: the preset's search.n_trials")
    parser.add_argument("--examples", type=int, default=64, help="test messages timed at batch 1")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over them, the models interleaved")
    parser.add_argument("--reference-trials", type=int, default=None, help="trials of the quality-only sweep (default: its preset's)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlops-bench-cost-") as tmp:
        store = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
        os.chdir(store)
        config, best, chosen = sweep(PRESET, args.n_trials, store)
        _, reference, _ = sweep(REFERENCE, args.reference_trials, store)
        arms = {"max quality": best, "selected": chosen, "quality only": reference}
        figures = side_by_side(config, arms, store, args.examples, args.repeats)

    print(f"{'':16}" + "".join(f"{name:>14}" for name in arms))
    for key in ("trial", "eval_f1", "test_f1", "p50_ms", "p95_ms", "examples_per_s", "serving_mb"):
        print(f"{key:16}" + "".join(f"{figures[name][key]:>14.4g}" for name in arms))
    against = figures["selected"]["p95_ms"] / figures["quality only"]["p95_ms"]
    gained = figures["selected"]["test_f1"] - figures["quality only"]["test_f1"]
    print(f"selected vs the quality-only sweep's best: p95 ratio {against:.3f}, test F1 {gained:+.4f}")
    ratio = figures["selected"]["p95_ms"] / figures["max quality"]["p95_ms"]
    delta = figures["selected"]["test_f1"] - figures["max quality"]["test_f1"]
    met = ratio <= COST_GOAL and delta >= -QUALITY_LOSS
    print(f"goal (cost ratio <= {COST_GOAL}, quality loss <= {QUALITY_LOSS}): {'met' if met else 'MISSED'}")
    print(f"P14 cost ratio {ratio:.3f} quality delta {delta:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
