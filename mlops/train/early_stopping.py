"""Early stopping and the best evaluation's adapter (`training.early_stopping`): stop when the watched validation metric
has not improved by `min_delta` for `patience` evaluations, and put back the trainable parameters of the best
evaluation before the final scores, whether or not training stopped early. At each evaluation the same metric on a
sample of the training split gives the generalisation gap.

The best state is an in-memory copy of the trainable (adapter, head, gate) parameters, not a checkpoint: it works for
every adapter kind, QLoRA included, with checkpoints on or off. HF's `load_best_model_at_end` is not used: it reloads a
full checkpoint, which breaks with PEFT adapters and 8-bit bases. With checkpoints on, the best state is saved into
each checkpoint folder, so that a resumed run still keeps its best evaluation's adapter."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.train.telemetry import TIMING_SUFFIXES

if TYPE_CHECKING:
    import torch

    from mlops.config import EarlyStoppingConfig

# Beside `Trainer`'s own files in each checkpoint folder: the best state so far and the patience counters.
BEST_STATE_FILE = "best_adapter_state.pt"


def train_metric_name(metric: str) -> str:
    """The training-sample twin of eval metric `metric` (eval_f1: train_f1). `train_loss` already names the
    per-step training loss, so eval_loss's twin is `train_sample_loss`."""
    name = "train_" + metric.removeprefix("eval_")
    return "train_sample_loss" if name == "train_loss" else name


@dataclass
class StoppingOutcome:
    """How a run with early stopping went: epochs run and planned, the evaluation kept, and its metrics."""

    epochs_run: int
    epochs_planned: int
    best_epoch: int
    best_step: int
    stopped_early: bool
    best_eval: dict[str, float] = field(default_factory=dict)  # the kept evaluation's eval_* values
    best_train: dict[str, float] = field(default_factory=dict)  # the training sample's twin metric at that evaluation
    gap: float | None = None  # train - validation of the watched metric at the kept evaluation

    @property
    def epochs_saved(self) -> int:
        return max(0, self.epochs_planned - self.epochs_run)

    def metrics(self) -> dict[str, float]:
        """What the run logs: epochs_run, best_epoch, best_step, stopped_early (0/1) and generalization_gap."""
        logged = {
            "epochs_run": float(self.epochs_run),
            "best_epoch": float(self.best_epoch),
            "best_step": float(self.best_step),
            "stopped_early": float(self.stopped_early),
        }
        if self.gap is not None:
            logged["generalization_gap"] = self.gap
        return logged


def best_adapter_callback(settings: EarlyStoppingConfig, metric: str, higher_is_better: bool, train_probe: Any = None) -> Any:
    """A `TrainerCallback` that watches `metric` at each evaluation (`settings.metric` overrides it), stops training
    after `settings.patience` evaluations without an improvement, and keeps the best evaluation's trainable
    parameters (`restore_best(model)` puts them back). With `train_probe` (a dataset of training examples), the
    metric's training twin is measured at each evaluation too. Run it through `run_trainer(..., stopper=...)`."""
    from transformers import TrainerCallback

    watched = settings.metric or metric
    train_name = train_metric_name(watched)
    sign = 1.0 if higher_is_better else -1.0

    class BestAdapter(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.trainer: Any = None
            self.resume_from: Path | None = None
            self.best_value = -math.inf  # sign * metric: higher is better here
            self.best_state: dict[str, torch.Tensor] = {}
            self.wait = 0
            self.last_step = -1
            self.outcome = StoppingOutcome(0, 0, 0, 0, stopped_early=False)

        def attach(self, trainer: Any, resume_from: Path | None) -> None:
            """The trainer whose model is probed and restored, and the checkpoint a resumed run starts from."""
            self.trainer, self.resume_from = trainer, resume_from

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.outcome.epochs_planned = int(state.num_train_epochs or math.ceil(args.num_train_epochs))
            saved = self.resume_from / BEST_STATE_FILE if self.resume_from is not None else None
            if saved is not None and saved.is_file():
                self._load(saved)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any) -> None:
            metrics = metrics or {}
            if watched not in metrics or state.global_step == self.last_step:
                return  # the same point again (a final evaluate() after the last epoch's)
            self.last_step = state.global_step
            train = self._probe(state)
            value = sign * float(metrics[watched])
            if value > self.best_value + settings.min_delta or not self.best_state:
                self.best_value, self.wait = value, 0
                self.best_state = _trainable_state(self.trainer.model)
                evaluated = {k: float(v) for k, v in metrics.items() if k.startswith("eval_") and not k.endswith(TIMING_SUFFIXES)}
                self.outcome.best_eval, self.outcome.best_train = evaluated, train
                self.outcome.best_step, self.outcome.best_epoch = int(state.global_step), math.ceil(state.epoch or 0)
                self.outcome.gap = train[train_name] - float(metrics[watched]) if train_name in train else None
            else:
                self.wait += 1
                if self.wait >= settings.patience:
                    control.should_training_stop = True

        def _probe(self, state: Any) -> dict[str, float]:
            """The watched metric on the training sample, logged as its curve."""
            if train_probe is None:
                return {}
            import mlflow

            prefix = "train_probe"  # predict() names its metrics `<prefix>_<name>`; renamed to the logged names below
            measured = self.trainer.predict(train_probe, metric_key_prefix=prefix).metrics or {}
            key = f"{prefix}_{watched.removeprefix('eval_')}"
            if key not in measured:
                return {}
            train = {train_name: float(measured[key])}
            if state.is_world_process_zero:
                mlflow.log_metrics(train, step=state.global_step, synchronous=False)
            return train

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self._save(Path(args.output_dir) / f"checkpoint-{state.global_step}" / BEST_STATE_FILE)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.outcome.epochs_run = math.ceil(state.epoch or 0)
            self.outcome.stopped_early = self.outcome.epochs_run < self.outcome.epochs_planned and self.wait >= settings.patience

        def restore_best(self, model: torch.nn.Module) -> StoppingOutcome:
            """Put the best evaluation's trainable parameters back into `model`; returns how the run went."""
            import torch

            parameters = dict(model.named_parameters())
            with torch.no_grad():
                for name, value in self.best_state.items():
                    parameters[name].copy_(value.to(parameters[name].device))
            return self.outcome

        def _save(self, path: Path) -> None:
            import torch

            if path.parent.is_dir():
                counters = {"best_value": self.best_value, "wait": self.wait, "last_step": self.last_step}
                torch.save({"state": self.best_state, "counters": counters, "outcome": self.outcome.__dict__}, path)

        def _load(self, path: Path) -> None:
            import torch

            saved = torch.load(path, map_location="cpu", weights_only=True)
            self.best_state = saved["state"]
            counters = saved["counters"]
            self.best_value, self.wait, self.last_step = float(counters["best_value"]), int(counters["wait"]), int(counters["last_step"])
            planned = self.outcome.epochs_planned
            self.outcome = StoppingOutcome(**saved["outcome"])
            self.outcome.epochs_planned = planned

    return BestAdapter()


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the parameters that train: the adapter (any kind), a new head, gates."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}
