"""Text classification: a sequence classifier with a new head, macro F1/precision/recall per epoch, a confusion
matrix and per-example predictions on the test split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.data import ClassificationData, once_per_split
from mlops.evaluate import CLASSIFICATION_METRICS, classification_per_example, confusion
from mlops.models import default_head_modules, default_lora_targets, load_classifier
from mlops.tasks.classification import SPEC
from mlops.tracking import CONFUSION_MATRIX_ARTIFACT, PER_EXAMPLE_ARTIFACT
from mlops.train.device import pick_device
from mlops.train.structure import adapt, calibration_batch
from mlops.train.tasks._base import Scores, Task, TaskInputs, TrainingSets, data_of, probe_indices

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import ModelConfig, TrainingConfig
    from mlops.data import ClassificationData, Split
    from mlops.models import ModelSource
    from mlops.train.structure import StructureReport

TEST_METRICS = SPEC.metric_names("test")


class _Encoded:
    """Pre-tokenized split that `Trainer` can index; padding happens per batch."""

    def __init__(self, split: Split, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        enc = tokenizer(split.texts, truncation=True, max_length=max_length)
        self.rows = [
            {**{k: enc[k][i] for k in enc.keys()}, "labels": split.labels[i]}  # noqa: SIM118 (BatchEncoding)
            for i in range(len(split))
        ]

    def subset(self, indices: list[int]) -> _Encoded:
        sample = object.__new__(_Encoded)
        sample.rows = [self.rows[i] for i in indices]
        return sample

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _compute_metrics(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    predictions, references = logits.argmax(-1).tolist(), labels.tolist()
    return {m.name: m.compute(predictions, references) for m in CLASSIFICATION_METRICS}


def build_classifier(
    source: ModelSource,
    num_labels: int,
    hp: TrainingConfig,
    model: ModelConfig,
    calibration: dict[str, Any] | None = None,
) -> tuple[PreTrainedModel, StructureReport]:
    """The classifier, its body quantised as `model.quantization` asks, with its adapter (`hp.adapter`) on
    `model.target_modules`, trained heads `model.head_modules`, and structure (frozen layers, pruned heads, FFN adapters)."""
    base = load_classifier(source, num_labels, model.quantization, pick_device(hp.device)[0])
    heads = model.head_modules if model.head_modules is not None else default_head_modules(base)
    return adapt(base, hp, SPEC.name, model.target_modules or default_lora_targets(base), heads, calibration)


class Classification(Task):
    name = SPEC.name

    def build_model(self, inputs: TaskInputs) -> tuple[PreTrainedModel, StructureReport]:
        data, hp, model_config, tokenizer = (
            data_of(inputs.data, ClassificationData, SPEC.name),
            inputs.hp,
            inputs.config.model,
            inputs.tokenizer,
        )
        calibration = None
        if hp.prune_heads > 0:  # head importance is measured on the first training batch
            calibration = calibration_batch(tokenizer, data.train.texts, data.train.labels, model_config.max_length, hp.batch_size)
        model, report = build_classifier(inputs.source, len(data.label_names), hp, model_config, calibration)
        model.config.pad_token_id = tokenizer.pad_token_id
        return model, report

    def training_sets(self, inputs: TaskInputs) -> TrainingSets:
        from transformers import DataCollatorWithPadding

        data, tokenizer = data_of(inputs.data, ClassificationData, SPEC.name), inputs.tokenizer
        max_length = inputs.config.model.max_length

        def encoded(split: Split) -> _Encoded:
            return once_per_split(split, ("encoded", id(tokenizer), max_length), lambda: _Encoded(split, tokenizer, max_length))

        train, validation, test = encoded(data.train), encoded(data.validation), encoded(data.test)
        collator = DataCollatorWithPadding(tokenizer)
        probe = None
        if inputs.hp.early_stopping is not None:
            probe = train.subset(probe_indices(len(train), len(validation), inputs.hp.seed))
        return TrainingSets(
            train,
            validation,
            collator,
            test,
            _compute_metrics,
            eval_batch_size=max(64, inputs.hp.batch_size),
            throughput="samples",
            train_probe=probe,
        )

    def score(self, inputs: TaskInputs, trainer: Any, last_eval: dict[str, float], sets: TrainingSets) -> Scores:
        data = data_of(inputs.data, ClassificationData, SPEC.name)
        prediction = trainer.predict(sets.test, metric_key_prefix="test")
        predictions = prediction.predictions.argmax(-1).tolist()
        test = {k: float(v) for k, v in (prediction.metrics or {}).items() if k in TEST_METRICS}
        documents = {
            CONFUSION_MATRIX_ARTIFACT: confusion(predictions, data.test.labels, data.label_names),
            PER_EXAMPLE_ARTIFACT: classification_per_example(data, predictions),  # resampled by champion/challenger gates
        }
        return Scores(dict(last_eval), test, documents=documents)

    def card(self, inputs: TaskInputs) -> dict[str, Any]:
        return {
            "label_names": data_of(inputs.data, ClassificationData, SPEC.name).label_names,
            "max_length": inputs.config.model.max_length,
        }
