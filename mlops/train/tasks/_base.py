"""The task interface: what differs between fine-tuning tasks (model head, encoded data and collator, what the
trainer evaluates, final scores, the adapter card), behind one small class. The loop itself is `mlops.train.loop`.

A task's `Task` subclass is found through its spec (`TaskSpec.trainer`, `mlops.tasks`): adding a task is described there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from mlops.tasks import resolve, spec_for

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from mlops.config import ExperimentConfig, GenerationConfig, TrainingConfig
    from mlops.data import TaskData
    from mlops.models import ModelSource
    from mlops.train.structure import StructureReport


_Data = TypeVar("_Data")


def data_of(data: TaskData, kind: type[_Data], task: str) -> _Data:
    """`data` as the kind of data `task` trains on; another kind is a bug in the caller (the loader the task's spec
    names makes this kind)."""
    if not isinstance(data, kind):
        raise TypeError(f"the {task} task needs {kind.__name__}, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class TaskInputs:
    """What one fine-tuning run of a task starts from: the (trial's) config, its training and decoding settings,
    the loaded splits, the model source and its tokenizer."""

    config: ExperimentConfig
    hp: TrainingConfig
    gen: GenerationConfig
    data: TaskData
    source: ModelSource
    tokenizer: PreTrainedTokenizerBase


@dataclass
class TrainingSets:
    """What the loop hands `Trainer` for one task: datasets, collator and evaluation hooks."""

    train: Any
    validation: Any
    collator: Any
    test: Any = None  # for `Task.score`, if it predicts through the trainer
    compute_metrics: Callable[[Any], dict[str, float]] | None = None
    trainer_class: Any = None  # a `Trainer` subclass, e.g. one that also generates at each evaluation
    eval_batch_size: int = 64
    group_by_length: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. what encoding had to truncate
    throughput: Literal["tokens", "samples"] = "tokens"  # what the run's throughput counts (train_<unit>_per_second)
    train_probe: Any = None  # with early stopping: training examples, as many as validation's, scored at each evaluation
    stopper: Any = None  # set by `fit` with early stopping: the callback that stops early and keeps the best state


@dataclass
class Scores:
    """A trained model's final scores and what the run logs besides them."""

    validation: dict[str, float]
    test: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)  # JSON artifacts by file name
    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # MLflow tables by file name


class Task(ABC):
    """One fine-tuning task (`config.task`)."""

    name: ClassVar[str]

    @abstractmethod
    def build_model(self, inputs: TaskInputs) -> tuple[PreTrainedModel, StructureReport]:
        """The base model with this task's head, adapter and structure, ready to train."""

    @abstractmethod
    def training_sets(self, inputs: TaskInputs) -> TrainingSets:
        """The encoded splits, the collator and the evaluation hooks the loop trains with."""

    @abstractmethod
    def score(self, inputs: TaskInputs, trainer: Any, last_eval: dict[str, float], sets: TrainingSets) -> Scores:
        """Final validation and test scores of the trained model (`trainer.model`); `last_eval` is the last evaluation's."""

    @abstractmethod
    def card(self, inputs: TaskInputs) -> dict[str, Any]:
        """What the adapter card records for serving, beside the task and the base model."""


def probe_indices(train_size: int, size: int, seed: int) -> list[int]:
    """`size` training examples (all, if fewer), drawn once with `seed`: the sample the generalisation gap is measured on."""
    import random

    return sorted(random.Random(seed).sample(range(train_size), min(size, train_size)))


_TASKS: dict[str, Task] = {}


def task_for(name: str) -> Task:
    """The training `Task` of task `name`: the class its spec names, built once."""
    if name not in _TASKS:
        task: Task = resolve(spec_for(name).trainer)()
        _TASKS[name] = task
    return _TASKS[name]
