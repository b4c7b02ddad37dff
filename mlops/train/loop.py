"""The one training loop: HF `Trainer` with the LoRA+ optimizer, seeded `TrainingArguments`, curves to the active
MLflow run and the search metric to a trial's reporter (`run_trainer`); and `fit`, which fine-tunes any task through
it (the task supplies model, data and scores) and saves the adapter with its card. Continued pre-training uses
`run_trainer` too."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import TrainingDiverged
from mlops.models import serving_base, write_card
from mlops.models.structure import save_structure
from mlops.output import verbose
from mlops.progress import Step, step
from mlops.tracking import is_main_process, seed_everything
from mlops.train._compat import checkpointing_argument
from mlops.train.checkpoints import CheckpointPlan, save_callback, trainer_arguments
from mlops.train.device import pick_device
from mlops.train.early_stopping import StoppingOutcome, best_adapter_callback
from mlops.train.tasks._base import TaskInputs, TrainingSets
from mlops.train.telemetry import TIMING_SUFFIXES, TrainingTelemetry

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import ExperimentConfig, TrainingConfig
    from mlops.train.tasks import Task


# Called with (validation metric value, epoch) after each evaluation; may raise to stop the trial.
Reporter = Callable[[float, int], None]


@dataclass
class FinetuneResult:
    validation: dict[str, float]
    test: dict[str, float]
    adapter_dir: Path
    trainable_params: int
    total_params: int
    train_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)  # other run metrics (e.g. truncation counts)
    documents: dict[str, Any] = field(default_factory=dict)  # JSON artifacts by file name (e.g. the confusion matrix)
    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # MLflow tables by file name (e.g. predictions)
    stopping: StoppingOutcome | None = None  # with `training.early_stopping`: epochs run and saved, the evaluation kept
    cost: dict[str, float] = field(default_factory=dict)  # the adapter's serving cost, once measured (`mlops.train.cost`)


def _loraplus_optimizer(model: torch.nn.Module, hp: TrainingConfig) -> torch.optim.Optimizer:
    """LoRA+ parameter groups: B matrices (zero at start) and the head modules learn `loraplus_lr_ratio` times faster."""
    import torch

    fast: list[torch.nn.Parameter] = []
    slow: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (fast if "lora_B" in name or "modules_to_save" in name else slow).append(param)
    groups = [
        {"params": slow, "lr": hp.learning_rate},
        {"params": fast, "lr": hp.learning_rate * hp.loraplus_lr_ratio},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=hp.weight_decay)


def _mlflow_callback(reporter: Reporter | None, metric: str) -> Any:
    import mlflow
    from transformers import TrainerCallback

    class MlflowCurves(TrainerCallback):  # type: ignore[misc]
        """Per-step train_loss and per-epoch eval_* to the active run; report the search metric."""

        def __init__(self) -> None:
            self.last_eval: dict[str, float] = {}
            self.last_eval_step = -1

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            logs = logs or {}
            if "loss" in logs:
                loss = float(logs["loss"])
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"train loss became {loss} at step {state.global_step}")
                metrics = {"train_loss": loss}
                if "learning_rate" in logs:
                    metrics["learning_rate"] = float(logs["learning_rate"])
                if state.is_world_process_zero:  # under DDP every rank calls back; only rank 0 has a run
                    mlflow.log_metrics(metrics, step=state.global_step, synchronous=False)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any) -> None:
            metrics = metrics or {}
            curves = {k: float(v) for k, v in metrics.items() if k.startswith("eval_") and not k.endswith(TIMING_SUFFIXES)}
            if state.global_step == self.last_eval_step:
                return  # the same point again (a final evaluate() after the last epoch's)
            self.last_eval, self.last_eval_step = curves, state.global_step
            if state.is_world_process_zero:
                mlflow.log_metrics(curves, step=state.global_step, synchronous=False)
            if reporter is not None and metric in metrics:
                reporter(float(metrics[metric]), math.ceil(state.epoch or 0))  # step = epochs started

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # The points up to a checkpoint are stored once it is: a retry resuming from it copies them from this
            # run, and would otherwise miss those still queued when the worker died.
            if state.is_world_process_zero:
                mlflow.flush_async_logging()

    return MlflowCurves()


def _progress_callback(progress: Step) -> Any:
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):  # type: ignore[misc]
        """Optimizer steps and the epoch to the toolkit's progress display (Trainer's own bars are off)."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            epoch = f"epoch {max(1, math.ceil(state.epoch or 0))}/{state.num_train_epochs or math.ceil(args.num_train_epochs)}"
            progress.update(state.global_step, state.max_steps, f"training, {epoch}, step")

    return StepProgress()


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


@contextmanager
def run_trainer(
    model: PreTrainedModel,
    hp: TrainingConfig,
    sets: TrainingSets,
    reporter: Reporter | None = None,
    metric: str = "",
    checkpoints: CheckpointPlan | None = None,
) -> Iterator[tuple[Any, Any, float]]:
    """Train with HF `Trainer` on `sets` and yield (trainer, curves callback, train seconds) for final predictions.

    Every toolkit run trains here: seeded, LoRA+ optimizer, no reporting integrations (curves go to
    the active MLflow run through our callback, and `metric` to `reporter` after each epoch's evaluation), NaN
    losses not filtered, the device and mixed precision from `pick_device`. Without `sets.validation` nothing is
    evaluated; with it, the final weights are always evaluated, also when `max_steps` ends mid-epoch. The run's
    telemetry (peak memory, `sets.throughput` per second, MFU) goes to the active MLflow run. With `checkpoints`, a
    checkpoint is saved at each evaluation point, and training resumes from `checkpoints.resume_from` if given.
    `sets.stopper` (`mlops.train.early_stopping.best_adapter_callback`) stops training early and keeps the best state.
    """
    import time

    from transformers import PrinterCallback, Trainer, TrainingArguments

    device, precision = pick_device(hp.device)
    with tempfile.TemporaryDirectory(prefix="mlops-trainer-") as scratch:
        args = TrainingArguments(
            output_dir=str(checkpoints.directory) if checkpoints is not None else scratch,
            learning_rate=hp.learning_rate,
            per_device_train_batch_size=hp.batch_size,
            per_device_eval_batch_size=sets.eval_batch_size,
            num_train_epochs=hp.epochs,
            max_steps=hp.max_steps or -1,
            gradient_accumulation_steps=hp.gradient_accumulation_steps,
            lr_scheduler_type=hp.lr_scheduler,
            lr_scheduler_kwargs={"num_cycles": hp.num_cycles} if hp.lr_scheduler == "cosine_with_restarts" else None,
            warmup_steps=hp.warmup_ratio,
            weight_decay=hp.weight_decay,
            label_smoothing_factor=hp.label_smoothing,
            **checkpointing_argument(hp.gradient_checkpointing),
            eval_strategy="epoch" if sets.validation is not None else "no",
            train_sampling_strategy="group_by_length" if sets.group_by_length else "random",
            remove_unused_columns=False,
            **trainer_arguments(checkpoints),
            logging_steps=hp.logging_steps,
            logging_nan_inf_filter=False,  # a NaN loss must reach the callback and fail the run, not be averaged away
            disable_tqdm=not verbose(),  # progress goes to the toolkit's display instead
            report_to="none",
            seed=hp.seed,
            data_seed=hp.seed,
            use_cpu=device == "cpu",
            dataloader_num_workers=0,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            deepspeed=hp.deepspeed,  # a DeepSpeed JSON path or dict, handed to the Trainer as is
        )
        curves = _mlflow_callback(reporter, metric)
        telemetry = TrainingTelemetry(model, device, sets.throughput)
        callbacks = [curves, telemetry.callback]
        stopper = sets.stopper
        if stopper is not None:  # before the checkpoint upload: it writes its best state into each checkpoint folder
            callbacks.append(stopper)
        if checkpoints is not None:
            callbacks.append(save_callback(checkpoints))
        trainer = (sets.trainer_class or Trainer)(
            model=model,
            args=args,
            train_dataset=sets.train,
            eval_dataset=sets.validation,
            data_collator=sets.collator,
            compute_metrics=sets.compute_metrics,
            optimizers=(_loraplus_optimizer(model, hp), None),
            callbacks=callbacks,
        )
        resume_from = str(checkpoints.resume_from) if checkpoints and checkpoints.resume_from else None
        if stopper is not None:
            stopper.attach(trainer, checkpoints.resume_from if checkpoints else None)
        start = time.perf_counter()
        with telemetry.measuring():
            if verbose():
                trainer.train(resume_from_checkpoint=resume_from)
            else:
                trainer.remove_callback(PrinterCallback)  # with its bars off, Trainer would print every log dict instead
                with step("training") as progress:
                    trainer.add_callback(_progress_callback(progress))
                    trainer.train(resume_from_checkpoint=resume_from)
        train_seconds = time.perf_counter() - start
        telemetry.log(train_seconds)
        if sets.validation is not None and curves.last_eval_step != trainer.state.global_step:  # max_steps ended mid-epoch
            trainer.evaluate()
        yield trainer, curves, train_seconds


def fit(
    task: Task, inputs: TaskInputs, output_dir: Path, reporter: Reporter | None = None, checkpoints: CheckpointPlan | None = None
) -> FinetuneResult:
    """Fine-tune `task`'s adapter on `inputs`: build the model, train through `run_trainer` (validation per epoch),
    score validation and test, save the adapter with its card.

    Needs an active MLflow run (on rank 0): curves are logged to it as training goes.
    """
    import mlflow

    config, tokenizer = inputs.config, inputs.tokenizer
    seed_everything(inputs.hp.seed)
    model, structure = task.build_model(inputs)
    trainable, total = count_parameters(model)
    sets = task.training_sets(inputs)
    sets.stopper = stopper = _stopper(inputs, sets)
    stopping: StoppingOutcome | None = None
    with run_trainer(model, inputs.hp, sets, reporter, config.search.metric, checkpoints) as (trainer, curves, train_seconds):
        last_eval, last_step = dict(curves.last_eval), trainer.state.global_step
        if stopper is not None:  # the best evaluation's adapter is the one scored, logged and registered
            stopping = stopper.restore_best(model)
            last_eval = dict(stopping.best_eval) or last_eval
        scores = task.score(inputs, trainer, last_eval, sets)
    kept = {} if stopping is None or stopping.best_step == last_step else stopping.best_train  # the kept point's twin, last
    if (scores.validation != dict(curves.last_eval) or kept) and is_main_process():  # final scores supersede the last curve point
        mlflow.log_metrics({**scores.validation, **kept}, step=last_step)
    save_adapter(model, tokenizer, output_dir, config, task.card(inputs), structure.initial_adapter)
    mlflow.flush_async_logging()
    return FinetuneResult(
        validation=scores.validation,
        test=scores.test,
        adapter_dir=output_dir,
        trainable_params=trainable,
        total_params=total,
        train_seconds=train_seconds,
        metrics={**sets.metrics, **scores.metrics, **structure.metrics(), **(stopping.metrics() if stopping else {})},
        documents={**scores.documents, **structure.documents()},
        tables=scores.tables,
        stopping=stopping,
    )


def _stopper(inputs: TaskInputs, sets: TrainingSets) -> Any:
    """With `training.early_stopping`: the callback that stops early and keeps the best evaluation's adapter."""
    settings = inputs.hp.early_stopping
    if settings is None or sets.validation is None:
        return None
    metric = settings.metric or inputs.config.search.metric
    higher_is_better = next(m.higher_is_better for m in inputs.config.spec.validation if m.name == metric)
    return best_adapter_callback(settings, metric, higher_is_better, sets.train_probe)


def save_adapter(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    config: ExperimentConfig,
    card: dict[str, Any],
    initial_adapter: Path | None = None,
) -> None:
    """The adapter (with any trained head), the tokenizer, and a card naming the task, the base model source and its
    quantisation (and how serving loads that base).

    The card's `structure` entry (the layers kept, pruned heads, FFN adapters) and the weights PEFT does not hold are what
    `mlops.models.load_adapted_model` rebuilds the served model from; its `serving` entry, how that model is merged and
    quantised (`mlops.models.finish_for_serving`). A PiSSA/OLoRA adapter is saved converted, against
    `initial_adapter`, to a plain LoRA (of twice the rank) on the unchanged base.
    """
    out.mkdir(parents=True, exist_ok=True)
    structure = save_structure(model, out)
    if structure["peft"]:
        initial = str(initial_adapter) if initial_adapter is not None else None
        model.save_pretrained(str(out), path_initial_model_for_weight_conversion=initial)
    tokenizer.save_pretrained(str(out))
    quantization = config.model.quantization
    write_card(
        out,
        {
            "task": config.task,
            "base_model": config.model.source,
            "quantization": quantization,
            "serving_base": serving_base(quantization),
            "structure": structure,
            "serving": asdict(config.serving),  # merged or not, the base's precision: what the served model loads
            **card,
        },
    )


def hyperparameters_as_params(hp: TrainingConfig) -> dict[str, Any]:
    """The training settings as run params; early stopping's as `early_stopping_<key>` (absent: off)."""
    params = {k: v for k, v in asdict(hp).items() if v is not None and k != "early_stopping"}
    if hp.early_stopping is not None:
        params |= {f"early_stopping_{k}": v for k, v in asdict(hp.early_stopping).items() if v is not None}
    return params
