"""What one fine-tuning task is, declared as data (`TaskSpec`): its dataset columns and data-contract rules, the
metrics it logs, how its base model is built and adapted, its baseline and per-example scores, and how it is served.

The rest of mlops asks the spec (`mlops.tasks.spec_for(config.task)`) and never compares task names. Behaviour
that lives in higher layers (the training `Task`, the data loader, the baseline) is named here by a reference,
"module:attribute", and imported only by the layer that runs it (`mlops.tasks.resolve`).

To add a task (e.g. `instruction`):
1. Write `mlops/tasks/<name>.py` with `SPEC = TaskSpec(...)`: its columns, metrics (and cost metrics, from `_cost.py`),
   model kind, serving, and the references to its data loader, baseline and training `Task` class.
2. Write what those references name, each in its own new module: the `Task` subclass in
   `mlops/train/tasks/<name>.py`; a data loader (e.g. in `mlops/data/`), a baseline (`mlops/evaluate/`), and a
   model-from-code file `mlops/serving/_pyfunc_<kind>.py` naming the pyfunc class, if the existing ones do not fit.
3. Add ONE line to `mlops/tasks/__init__.py`: `register(<name>.SPEC)`.
Config validation, the sweep's searchable metrics, the logged metrics, policy and gate validation, per-example
comparison, the memory estimate and `mlops plan` then know the task; `tests/tasks/test_registry.py` checks every reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Split = Literal["eval", "test"]


@dataclass(frozen=True)
class MetricSpec:
    """One logged metric: its range and direction, whether a promotion gate may judge it, whether per-example scores
    exist to resample it (champion/challenger), and the metric the sweep's baseline logs for it (`beat_baseline`)."""

    name: str
    low: float = 0.0
    high: float = 1.0
    higher_is_better: bool = True
    gate: bool = True
    per_example: bool = False
    baseline: str | None = None

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """Optuna's word for which way is better (a search objective named by this metric)."""
        return "maximize" if self.higher_is_better else "minimize"


def bounded(split: Split, name: str, *, per_example: bool = False) -> MetricSpec:
    """A score in [0, 1], higher is better, with its baseline on the same split (baselines name validation in full)."""
    baseline_split = "validation" if split == "eval" else split
    return MetricSpec(f"{split}_{name}", per_example=per_example, baseline=f"baseline_{baseline_split}_{name}")


def loss(split: Split) -> MetricSpec:
    return MetricSpec(f"{split}_loss", 0.0, math.inf, higher_is_better=False)


@dataclass(frozen=True)
class Column:
    """A `dataset.<field>` the task reads: its role in the data contract, and whether the data must have it."""

    field: str
    role: Literal["input", "target", "extra"]
    required: bool = True


@dataclass(frozen=True)
class ServedInput:
    """One input column a served model accepts: text, or `turns` (a list of {role, content} conversation turns)."""

    column: str
    kind: Literal["text", "turns"] = "text"


@dataclass(frozen=True)
class ServingSpec:
    """How a registered model of the task is served: the model-from-code file beside `mlops/serving/pyfunc.py`, the
    pyfunc class it names, the input columns it accepts, the columns it returns, and a default input text.

    One input is a required column. Several are alternatives: a request holds any of them, and the logged signature
    declares each as optional (so that MLflow's schema enforcement lets each shape through); the pyfunc class checks
    that every row has one."""

    code_file: str
    model_class: str
    inputs: tuple[ServedInput, ...]
    output_columns: tuple[str, ...]
    example: str

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ValueError(f"{self.model_class}: a served model needs at least one input column")


@dataclass(frozen=True)
class TaskSpec:
    """Everything that differs by task, as data. See this module's docstring for how to add one."""

    name: str
    columns: tuple[Column, ...]  # the input column first, then the target
    stratify: bool  # split by the target as a class label, and hold every split to `min_examples_per_class`
    drop_reasons: tuple[str, ...]  # why the data contract drops a row: logged as `rows_dropped_<reason>`, 0 included
    validation: tuple[MetricSpec, ...]  # `eval_*`: logged at evaluation, the sweep may optimise any of them
    test: tuple[MetricSpec, ...]  # `test_*`: logged once for the trained model
    base: Literal["classifier", "causal_lm"]  # a sequence classifier with a new head, or a causal LM
    peft_task_type: str  # PEFT's `task_type`
    generates: bool  # decodes with the `generation` section: its decoding settings are searchable and logged
    sequence_fields: tuple[str, ...]  # dotted config fields summed (with `sequence_extra_tokens`) into tokens per example
    per_example: Literal["predictions", "values"]  # labels and predictions (recomputed per resample), or scores
    serving: ServingSpec
    loader: str  # "module:function" (cfg, base_dir, seed) -> TaskData
    baseline: str  # "module:function" (data, seed) -> baseline metrics
    trainer: str  # "module:class" of the `mlops.train.tasks.Task` that trains it
    sequence_extra_tokens: int = 0
    cost: tuple[MetricSpec, ...] = ()  # the serving cost every run that trains a model logs, unprefixed (`_cost.py`)

    @property
    def has_classifier_head(self) -> bool:
        return self.base == "classifier"

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        return self.validation + self.test + self.cost

    def metric_names(self, split: Split | None = None) -> tuple[str, ...]:
        """The names of the validation (`eval`) or test metrics, or with no split all the task logs, cost included."""
        chosen = {"eval": self.validation, "test": self.test, None: self.metrics}[split]
        return tuple(m.name for m in chosen)

    def column_fields(self, role: Literal["input", "target", "extra"]) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns if c.role == role)
