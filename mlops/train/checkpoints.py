"""Training checkpoints through `Trainer`'s own: what a run saves at each evaluation point (adapter, optimizer,
scheduler, RNG states, step) and where from it resumes; a checkpoint is usable once its `trainer_state.json`, which
`Trainer` writes last, is there."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class CheckpointPlan:
    """Checkpoint a training run into `directory` (`checkpoint-<step>` folders, the newest `keep` kept), resume from
    `resume_from` if given, and call `on_save(folder, step)` after each save (e.g. to upload it)."""

    directory: Path
    keep: int = 1
    resume_from: Path | None = None
    on_save: Callable[[Path, int], None] | None = None


def checkpoint_step(name: str) -> int | None:
    """The step a `checkpoint-<step>` folder name stands for; None for any other name."""
    match = _CHECKPOINT.match(name)
    return int(match.group(1)) if match is not None else None


def checkpoint_state(folder: Path) -> dict[str, Any] | None:
    """The `Trainer` state a complete checkpoint folder was saved with (`global_step`, `epoch`, ...); None if `folder`
    is not one (missing, or cut short)."""
    expected = checkpoint_step(folder.name)
    path = folder / TRAINER_STATE
    if expected is None or not path.is_file():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        step = int(state["global_step"])
    except (ValueError, KeyError, TypeError, OSError):
        return None
    return state if step == expected else None


def last_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint in `directory`, if any."""
    if not directory.is_dir():
        return None
    complete = [(int(state["global_step"]), folder) for folder in directory.iterdir() if (state := checkpoint_state(folder)) is not None]
    return max(complete)[1] if complete else None


def trainer_arguments(plan: CheckpointPlan | None) -> dict[str, Any]:
    """`TrainingArguments` that save a checkpoint at each (per-epoch) evaluation point, or none."""
    if plan is None:
        return {"save_strategy": "no"}
    return {"save_strategy": "epoch", "save_total_limit": plan.keep, "save_only_model": False}


def save_callback(plan: CheckpointPlan) -> Any:
    """A `TrainerCallback` that hands each saved checkpoint to `plan.on_save`."""
    from transformers import TrainerCallback

    class OnSave(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if plan.on_save is not None and state.is_world_process_zero:
                plan.on_save(Path(args.output_dir) / f"checkpoint-{state.global_step}", int(state.global_step))

    return OnSave()
