"""Recovery from a real out-of-memory error on a GPU: the device is filled until the allocator refuses, and then a
sweep runs whose first trial runs out of memory for real inside its training step.

    python benchmarks/oom_recovery.py [--out results.json]

1. Allocate 1 GiB blocks until `torch.OutOfMemoryError`, catch it, release: `memory_allocated` must be back at the
   baseline.
2. A 2-trial sweep of the tiny LLaMA summariser on CUDA (`search.on_oom: halve_batch`). The first attempt of trial 0
   holds 1 GiB blocks in its training step until the device is full, as activations would; the error must retry the
   trial at half the batch in the same run, and both trials must finish. Each model is built with `memory_allocated`
   at the baseline (nothing of the attempt before it left), and the sweep ends there too.

`--cpu` checks the script on CPU: the error is raised by hand after a few blocks, and memory is not compared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 2**30
TOLERANCE_BYTES = 64 * 2**20  # CUDA tensors a run may keep on purpose (none expected)


def fill_device(device: str, blocks: list[Any]) -> None:
    """Append 1 GiB blocks to `blocks` until the allocator refuses (on CPU: 4 blocks of 64 MiB, then the error by hand)."""
    import torch

    if device == "cpu":
        blocks.extend(torch.ones(2**26, dtype=torch.uint8) for _ in range(4))
        raise torch.OutOfMemoryError("out of memory (raised by hand on CPU)")
    while True:
        blocks.append(torch.empty(BLOCK, dtype=torch.uint8, device=device))


def allocated(device: str) -> int:
    import torch

    return torch.cuda.memory_allocated() if device == "cuda" else 0


def bare_recovery(device: str, baseline: int) -> dict[str, Any]:
    import torch

    from mlops.train import release_memory

    blocks: list[Any] = []
    try:
        fill_device(device, blocks)
    except torch.OutOfMemoryError:
        filled = len(blocks)
    blocks.clear()
    release_memory()
    return {"blocks_until_oom": filled, "allocated_after_release": allocated(device), "back_at_baseline": allocated(device) <= baseline}


def sweep_recovery(device: str, baseline: int, work: Path) -> dict[str, Any]:
    """The sweep with a real out-of-memory error in trial 0's first attempt; what each model build and the end saw."""
    import mlflow
    from mlflow import MlflowClient
    from transformers import Trainer

    from mlops.config import load_config
    from mlops.search import SweepOptions, run_sweep
    from mlops.train.tasks.summarization import Summarization

    real_step, real_build = Trainer.training_step, Summarization.build_model
    at_build: list[int] = []
    attempts: list[int] = []

    def training_step(self: Any, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if not attempts or attempts[-1] != id(self):
            attempts.append(id(self))
            if len(attempts) == 1:
                held: list[Any] = []  # held by this frame, as a step's activations are, when the error is raised
                fill_device(device, held)
        return real_step(self, model, inputs, *args, **kwargs)

    def build_model(self: Any, inputs: Any) -> Any:
        at_build.append(allocated(device))
        return real_build(self, inputs)

    Trainer.training_step, Summarization.build_model = training_step, build_model  # type: ignore[method-assign]
    try:
        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        overrides = {"training.device": device, "search.n_trials": 2, "search.on_oom": "halve_batch"}
        config = load_config(str(ROOT / "tests" / "configs" / "tiny-summarizer.yaml"), overrides)
        result = run_sweep(config, SweepOptions(storage=f"sqlite:///{work / 'optuna.db'}", promote=False))
    finally:
        Trainer.training_step, Summarization.build_model = real_step, real_build  # type: ignore[method-assign]
    client = MlflowClient()
    experiment = client.get_run(result.parent_run_id).info.experiment_id
    trials = sorted(
        (r for r in client.search_runs([experiment]) if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id),
        key=lambda r: int(r.data.params["trial_number"]),
    )
    return {
        "statuses": [r.info.status for r in trials],
        "halvings": [r.data.tags.get("mlops.oom_halving.1") for r in trials],
        "batch_size_effective": [r.data.params.get("batch_size_effective") for r in trials],
        "peak_memory_gib": [r.data.metrics.get("peak_memory_gib") for r in trials],
        "allocated_at_each_build": at_build,
        "allocated_at_end": allocated(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="check the script on CPU (the error raised by hand)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    import torch

    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("oom_recovery: no CUDA device; this check needs a GPU (use --cpu to check the script)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if device == "cuda":
        torch.cuda.init()
    baseline = allocated(device)
    with tempfile.TemporaryDirectory(prefix="mlops-oom-") as tmp:
        figures = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "baseline_allocated": baseline}
        figures["bare"] = bare_recovery(device, baseline)
        figures["sweep"] = sweep = sweep_recovery(device, baseline, Path(tmp))
    problems = []
    if not figures["bare"]["back_at_baseline"]:
        problems.append("memory not back at the baseline after the bare out-of-memory error")
    if sweep["statuses"] != ["FINISHED", "FINISHED"] or not (sweep["halvings"][0] or "").startswith("batch_size 8 -> 4"):
        problems.append(f"trial 0 should finish after one halving and trial 1 should finish: {sweep['statuses']}, {sweep['halvings']}")
    if len(sweep["allocated_at_each_build"]) != 3:
        problems.append(f"expected 3 model builds (trial 0 twice, trial 1 once), got {len(sweep['allocated_at_each_build'])}")
    leftover = [a - baseline for a in [*sweep["allocated_at_each_build"], sweep["allocated_at_end"]]]
    if max(leftover) > TOLERANCE_BYTES:
        problems.append(f"memory not back at the baseline before a model build or at the end: {leftover} bytes over")
    figures["ok"] = not problems
    figures["problems"] = problems
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    raise SystemExit(0 if not problems else 1)


if __name__ == "__main__":
    main()
