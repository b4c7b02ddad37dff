"""LoRA fine-tuning of a sequence classifier with HF `Trainer`, logging curves to the active MLflow run."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
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

# Called with (validation metric value, epoch) after each evaluation; may raise to stop the trial.
Reporter = Callable[[float, int], None]
MODEL_CARD = "mlops_model.json"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class FinetuneResult:
    validation: dict[str, float]
    test: dict[str, float]
    confusion: dict[str, Any]
    adapter_dir: Path
    trainable_params: int
    total_params: int
    train_seconds: float


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
                mlflow.log_metrics(metrics, step=state.global_step, synchronous=False)

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any) -> None:
            metrics = metrics or {}
            curves = {k: float(v) for k, v in metrics.items() if k in ("eval_loss", "eval_f1", "eval_precision", "eval_recall")}
            if state.global_step == self.last_eval_step:
                return  # the same point again (a final evaluate() after the last epoch's)
            self.last_eval, self.last_eval_step = curves, state.global_step
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
    from peft import LoraConfig, TaskType, get_peft_model

    base = source.load_classifier(num_labels)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=target_modules or default_lora_targets(base),
        modules_to_save=head_modules if head_modules is not None else default_head_modules(base),
    )
    return get_peft_model(base, lora)  # type: ignore[return-value]


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


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
    """Train a LoRA adapter, evaluate on validation (per epoch) and test (once), save the adapter.

    Needs an active MLflow run: curves are logged to it as training goes.
    """
    import time
    import warnings

    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)  # raised inside peft

    seed_everything(hp.seed)
    device, precision = pick_device(hp.device)
    model = build_peft_classifier(source, len(data.label_names), hp, config.model.target_modules, config.model.head_modules)
    model.config.pad_token_id = tokenizer.pad_token_id
    trainable, total = count_parameters(model)
    train_set, val_set, test_set = (_Encoded(data.split(s), tokenizer, config.model.max_length) for s in ("train", "validation", "test"))
    with tempfile.TemporaryDirectory(prefix="mlops-trainer-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            learning_rate=hp.learning_rate,
            per_device_train_batch_size=hp.batch_size,
            per_device_eval_batch_size=max(64, hp.batch_size),
            gradient_accumulation_steps=hp.gradient_accumulation_steps,
            num_train_epochs=hp.epochs,
            max_steps=hp.max_steps or -1,
            warmup_steps=hp.warmup_ratio,
            weight_decay=hp.weight_decay,
            lr_scheduler_type="linear",
            eval_strategy="epoch",
            save_strategy="no",
            logging_steps=hp.logging_steps,
            logging_nan_inf_filter=False,  # a NaN loss must reach the callback and fail the trial, not be averaged away
            report_to="none",
            seed=hp.seed,
            data_seed=hp.seed,
            use_cpu=device == "cpu",
            dataloader_num_workers=0,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
        )
        curves = _mlflow_callback(reporter, metric)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset=val_set,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=_compute_metrics,
            optimizers=(_loraplus_optimizer(model, hp), None),
            callbacks=[curves],
        )
        start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - start
        if curves.last_eval_step != trainer.state.global_step:  # max_steps ended mid-epoch: evaluate the final weights
            trainer.evaluate()
        validation = dict(curves.last_eval)
        prediction = trainer.predict(test_set, metric_key_prefix="test")  # type: ignore[arg-type]
    test_predictions = prediction.predictions.argmax(-1).tolist()  # type: ignore[union-attr]
    test = {k: float(v) for k, v in (prediction.metrics or {}).items() if k in ("test_loss", "test_f1", "test_precision", "test_recall")}
    save_adapter(model, tokenizer, output_dir, config, data.label_names)
    import mlflow

    mlflow.flush_async_logging()
    return FinetuneResult(
        validation=validation,
        test=test,
        confusion=confusion(test_predictions, data.test.labels, data.label_names),
        adapter_dir=output_dir,
        trainable_params=trainable,
        total_params=total,
        train_seconds=train_seconds,
    )


def save_adapter(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path, config: ExperimentConfig, label_names: list[str]
) -> None:
    """The adapter (with the trained head), the tokenizer, and a card naming the base model source."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    card = {
        "task": config.task,
        "base_model": config.model.source,
        "label_names": label_names,
        "max_length": config.model.max_length,
    }
    (out / MODEL_CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")


def hyperparameters_as_params(hp: TrainingConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(hp).items() if v is not None}
