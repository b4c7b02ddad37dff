"""LoRA fine-tuning with HF `Trainer`, logging curves to the active MLflow run: the shared loop
(`run_trainer`, `save_adapter`) and the sequence classifier (`finetune`)."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.data import ClassificationData, Split
from mlops.environment import seed_everything
from mlops.metrics import CLASSIFICATION_METRICS, confusion
from mlops.models import ModelSource, default_head_modules, default_lora_targets

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import ExperimentConfig, TrainingConfig
    from mlops.structure import StructureReport

_TIMING_SUFFIXES = ("_runtime", "_per_second")

# Called with (validation metric value, epoch) after each evaluation; may raise to stop the trial.
Reporter = Callable[[float, int], None]
MODEL_CARD = "mlops_model.json"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


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


def pick_device(requested: str) -> tuple[str, str | None]:
    """CUDA with bf16 where supported (fp16 otherwise), else CPU."""
    import torch

    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return "cpu", None
    if not torch.cuda.is_available():
        from mlops.errors import ConfigError

        raise ConfigError("training.device: 'cuda' requested but no CUDA device is available")
    return "cuda", "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class _Encoded:
    """Pre-tokenized split that `Trainer` can index; padding happens per batch."""

    def __init__(self, split: Split, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        enc = tokenizer(split.texts, truncation=True, max_length=max_length)
        self.rows = [
            {**{k: enc[k][i] for k in enc.keys()}, "labels": split.labels[i]}  # noqa: SIM118 (BatchEncoding)
            for i in range(len(split))
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


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
            curves = {k: float(v) for k, v in metrics.items() if k.startswith("eval_") and not k.endswith(_TIMING_SUFFIXES)}
            if state.global_step == self.last_eval_step:
                return  # the same point again (a final evaluate() after the last epoch's)
            self.last_eval, self.last_eval_step = curves, state.global_step
            if state.is_world_process_zero:
                mlflow.log_metrics(curves, step=state.global_step, synchronous=False)
            if reporter is not None and metric in metrics:
                reporter(float(metrics[metric]), math.ceil(state.epoch or 0))  # step = epochs started

    return MlflowCurves()


def _compute_metrics(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    predictions, references = logits.argmax(-1).tolist(), labels.tolist()
    return {m.name: m.compute(predictions, references) for m in CLASSIFICATION_METRICS}


def build_peft_classifier(
    source: ModelSource, num_labels: int, hp: TrainingConfig, target_modules: list[str] | None, head_modules: list[str] | None = None
) -> PreTrainedModel:
    return build_classifier(source, num_labels, hp, target_modules, head_modules)[0]


def build_classifier(
    source: ModelSource,
    num_labels: int,
    hp: TrainingConfig,
    target_modules: list[str] | None,
    head_modules: list[str] | None = None,
    calibration: dict[str, Any] | None = None,
) -> tuple[PreTrainedModel, StructureReport]:
    """The classifier with its adapter (`hp.adapter`) and structure (frozen layers, pruned heads, FFN adapters)."""
    from mlops.structure import adapt

    base = source.load_classifier(num_labels)
    heads = head_modules if head_modules is not None else default_head_modules(base)
    model, report = adapt(base, hp, "classification", target_modules or default_lora_targets(base), heads, calibration)
    return model, report


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def training_arguments(
    output_dir: str,
    *,
    device: str,
    learning_rate: float,
    batch_size: int,
    max_steps: int,
    seed: int,
    logging_steps: int,
    lr_scheduler_type: str = "linear",
    **extra: Any,
) -> Any:
    """`TrainingArguments` as every toolkit run uses them: seeded, no checkpoints, no reporting
    integrations (curves go to MLflow through our callback), NaN losses not filtered, the device
    and mixed precision from `pick_device`. `extra` adds run-specific settings."""
    from transformers import TrainingArguments

    device_name, precision = pick_device(device)
    return TrainingArguments(
        output_dir=output_dir,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        max_steps=max_steps,
        lr_scheduler_type=lr_scheduler_type,
        save_strategy="no",
        logging_steps=logging_steps,
        logging_nan_inf_filter=False,  # a NaN loss must reach the callback and fail the run, not be averaged away
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=device_name == "cpu",
        dataloader_num_workers=0,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        **extra,
    )


@contextmanager
def run_trainer(
    model: PreTrainedModel,
    hp: TrainingConfig,
    train_set: Any,
    val_set: Any,
    collator: Any,
    reporter: Reporter | None,
    metric: str,
    *,
    compute_metrics: Callable[[Any], dict[str, float]] | None = None,
    trainer_class: Any = None,
    eval_batch_size: int = 64,
    group_by_length: bool = False,
) -> Iterator[tuple[Any, Any, float]]:
    """Train with HF `Trainer` (LoRA+ optimizer, per-epoch evaluation, curves to the active MLflow
    run) and yield (trainer, curves callback, train seconds) for final predictions.

    The final weights are always evaluated, also when `max_steps` ends mid-epoch.
    """
    import time
    import warnings

    from transformers import Trainer

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)  # raised inside peft
    with tempfile.TemporaryDirectory(prefix="mlops-trainer-") as scratch:
        args = training_arguments(
            scratch,
            device=hp.device,
            learning_rate=hp.learning_rate,
            batch_size=hp.batch_size,
            max_steps=hp.max_steps or -1,
            seed=hp.seed,
            logging_steps=hp.logging_steps,
            per_device_eval_batch_size=eval_batch_size,
            gradient_accumulation_steps=hp.gradient_accumulation_steps,
            lr_scheduler_type=hp.lr_scheduler,
            lr_scheduler_kwargs={"num_cycles": hp.num_cycles} if hp.lr_scheduler == "cosine_with_restarts" else None,
            activation_checkpointing=hp.gradient_checkpointing,
            num_train_epochs=hp.epochs,
            warmup_steps=hp.warmup_ratio,
            weight_decay=hp.weight_decay,
            eval_strategy="epoch",
            train_sampling_strategy="group_by_length" if group_by_length else "random",
            remove_unused_columns=False,
            deepspeed=hp.deepspeed,  # a DeepSpeed JSON path or dict, handed to the Trainer as is
        )
        curves = _mlflow_callback(reporter, metric)
        trainer = (trainer_class or Trainer)(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset=val_set,
            data_collator=collator,
            compute_metrics=compute_metrics,
            optimizers=(_loraplus_optimizer(model, hp), None),
            callbacks=[curves],
        )
        start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - start
        if curves.last_eval_step != trainer.state.global_step:  # max_steps ended mid-epoch: evaluate the final weights
            trainer.evaluate()
        yield trainer, curves, train_seconds


def finetune(
    config: ExperimentConfig,
    hp: TrainingConfig,
    data: ClassificationData,
    source: ModelSource,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    reporter: Reporter | None = None,
    metric: str = "eval_f1",
) -> FinetuneResult:
    """Train a LoRA classifier adapter, evaluate on validation (per epoch) and test (once), save the adapter.

    Needs an active MLflow run: curves are logged to it as training goes.
    """
    import mlflow
    from transformers import DataCollatorWithPadding

    from mlops.promotion import PER_EXAMPLE_ARTIFACT, classification_per_example

    seed_everything(hp.seed)
    calibration = None
    if hp.prune_heads > 0:  # head importance is measured on the first training batch
        from mlops.structure import calibration_batch

        calibration = calibration_batch(tokenizer, data.train.texts, data.train.labels, config.model.max_length, hp.batch_size)
    model, structure = build_classifier(
        source, len(data.label_names), hp, config.model.target_modules, config.model.head_modules, calibration
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    trainable, total = count_parameters(model)
    train_set, val_set, test_set = (_Encoded(data.split(s), tokenizer, config.model.max_length) for s in ("train", "validation", "test"))
    collator = DataCollatorWithPadding(tokenizer)
    with run_trainer(
        model, hp, train_set, val_set, collator, reporter, metric, compute_metrics=_compute_metrics, eval_batch_size=max(64, hp.batch_size)
    ) as (trainer, curves, train_seconds):
        validation = dict(curves.last_eval)
        prediction = trainer.predict(test_set, metric_key_prefix="test")
    test_predictions = prediction.predictions.argmax(-1).tolist()
    test = {k: float(v) for k, v in (prediction.metrics or {}).items() if k in ("test_loss", "test_f1", "test_precision", "test_recall")}
    save_adapter(model, tokenizer, output_dir, config, {"label_names": data.label_names, "max_length": config.model.max_length})
    mlflow.flush_async_logging()
    return FinetuneResult(
        validation=validation,
        test=test,
        adapter_dir=output_dir,
        trainable_params=trainable,
        total_params=total,
        train_seconds=train_seconds,
        metrics=structure.metrics(),
        documents={
            "confusion_matrix.json": confusion(test_predictions, data.test.labels, data.label_names),
            PER_EXAMPLE_ARTIFACT: classification_per_example(data, test_predictions),  # resampled by champion/challenger gates
            **structure.documents(),
        },
    )


def save_adapter(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path, config: ExperimentConfig, card: dict[str, Any]
) -> None:
    """The adapter (with any trained head), the tokenizer, and a card naming the task and the base model source.

    The card's `structure` entry (pruned heads, FFN adapters) and the weights PEFT does not hold are what
    `mlops.structure.load_adapted_model` rebuilds the served model from.
    """
    from mlops.structure import save_structure

    out.mkdir(parents=True, exist_ok=True)
    structure = save_structure(model, out)
    if structure["peft"]:
        model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    card = {"task": config.task, "base_model": config.model.source, "structure": structure, **card}
    (out / MODEL_CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")


def hyperparameters_as_params(hp: TrainingConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(hp).items() if v is not None}
