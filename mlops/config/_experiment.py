"""The experiment config: one YAML names the task, data, model, training defaults, search space and registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlops.config._conditions import inapplicable, when_errors
from mlops.config._cost import CostConfig
from mlops.config._data import DEFAULT_AUGMENT_METHODS, AugmentConfig, DatasetConfig, PretrainConfig
from mlops.config._search import TUNABLE_SECTIONS, ParamSpace, PipelineConfig, SearchConfig, conditions, setting_domains, tunable_field
from mlops.config._serving import ServingConfig
from mlops.config._training import BUDGET_PARAMETERS, DECODING_PARAMETERS, GenerationConfig, ModelConfig, TrainingConfig, _help
from mlops.config._validate import choice_error
from mlops.tasks import COST_METRICS, GENERATION_COST_METRICS, spec_for, task_names, unknown_task

if TYPE_CHECKING:
    from mlops.tasks import TaskSpec

_SECTIONS = tuple(dict.fromkeys(TUNABLE_SECTIONS.values()))


@dataclass
class RegistryConfig:
    model_name: str = field(metadata=_help("the registered model the best version goes to"))
    policy: str = field(metadata=_help("a policy name under registry/ or a path to a policy YAML"))


@dataclass
class ExperimentConfig:
    name: str = field(metadata=_help("the config's name: in run names (sweep-NAME), study names and the default experiment_name"))
    task: str = field(metadata={"help": "a registered task (mlops.tasks)", "choices": task_names, "unknown": unknown_task})
    dataset: DatasetConfig = field(metadata=_help("where the data comes from, its columns, splits and contract"))
    model: ModelConfig = field(metadata=_help("the base model and what LoRA adapts"))
    registry: RegistryConfig = field(metadata=_help("the registered model and its promotion policy"))
    experiment_name: str | None = field(
        default=None, metadata=_help("the MLflow experiment of `mlops` commands (default: name; under `mlflow run`, the one MLflow chose)")
    )
    training: TrainingConfig = field(
        default_factory=TrainingConfig, metadata=_help("hyperparameters and structure: the defaults a trial or `finetune` overrides")
    )
    search: SearchConfig = field(
        default_factory=SearchConfig, metadata=_help("the sweep: its budget, sampler, pruner, metric and search space")
    )
    pipeline: PipelineConfig = field(default_factory=PipelineConfig, metadata=_help("the staged practice run by `main`"))
    generation: GenerationConfig = field(
        default_factory=GenerationConfig, metadata=_help("prompts, truncation budgets and decoding of the generating tasks")
    )
    pretrain: PretrainConfig = field(default_factory=PretrainConfig, metadata=_help("continued pre-training (`pretrain`)"))
    augment: AugmentConfig = field(
        default_factory=AugmentConfig, metadata=_help("training-data augmentation (`augment`, and trials that search it)")
    )
    cost: CostConfig = field(
        default_factory=CostConfig, metadata=_help("what serving a trained model costs, measured after training on every run that trains")
    )
    serving: ServingConfig = field(
        default_factory=ServingConfig, metadata=_help("how the served model runs (merged adapter, precision): as its cost was measured")
    )
    source_file: str = field(default="", init=False, metadata=_help("set by the loader: where this config came from"))

    def __post_init__(self) -> None:
        """An objective that names a metric of the task without a direction takes the metric's own."""
        if self.task not in task_names() or not isinstance(self.search, SearchConfig):
            return
        known = {m.name: m for m in self.spec.metrics}
        for objective in self.search.objectives:
            if objective.direction is None and objective.metric in known:
                objective.direction = known[objective.metric].direction

    def check(self, path: str) -> list[str]:
        """The search metric must be one training produces, and every bound, choice and grid
        value of the search space must be a valid training value."""
        errors = [] if self.task not in task_names() else self._task_errors(self.spec)  # an unknown task is refused once, by `build`
        spaces = {
            "search.space": self.search.space,
            "pipeline.structure_space": self.pipeline.structure_space,
            "pipeline.data_space": self.pipeline.data_space,
        }
        for path, space in spaces.items():
            errors += self._check_space(path, space)
            errors += when_errors(path, space, conditions(space), setting_domains())
        return errors

    def _task_errors(self, spec: TaskSpec) -> list[str]:
        errors = []
        searchable = spec.metric_names("eval")
        if self.search.metric not in searchable:
            errors.append(f"search.metric: '{self.search.metric}' is not produced by {self.task}; use one of {', '.join(searchable)}")
        stopping = self.training.early_stopping
        if stopping is not None and stopping.metric is not None and stopping.metric not in searchable:
            errors.append(
                f"training.early_stopping.metric: '{stopping.metric}' is not logged by {self.task} at evaluation; "
                f"use one of {', '.join(searchable)}"
            )
        if not spec.generates:
            decoding = [k for k in self.search.space if k in DECODING_PARAMETERS]
            generating = ", ".join(name for name in task_names() if spec_for(name).generates)
            errors += [f"search.space.{k}: a decoding setting; only {generating} decodes" for k in decoding]
        errors += self._objective_errors(spec)
        for name, section in BUDGET_PARAMETERS.items():
            if name in self.search.space and f"{section}.{name}" not in spec.sequence_fields:
                budgets = ", ".join(b for b, where in BUDGET_PARAMETERS.items() if f"{where}.{b}" in spec.sequence_fields)
                errors.append(f"search.space.{name}: not a token budget of {self.task} (it has no effect there); search {budgets}")
        return errors

    def _objective_errors(self, spec: TaskSpec) -> list[str]:
        """Objectives against the task's metrics (a direction to say or that contradicts the metric's), and cost metrics
        that `cost.examples: 0` would never measure."""
        errors = []
        known = {m.name: m for m in spec.metrics}
        cost = {m.name for m in COST_METRICS + GENERATION_COST_METRICS}
        for i, objective in enumerate(self.search.objectives):
            metric = known.get(objective.metric)
            if metric is None and objective.direction is None and objective.metric:
                errors.append(
                    f"search.objectives[{i}].direction: '{objective.metric}' is not a metric {self.task} describes; "
                    "say maximize or minimize"
                )
            elif metric is not None and objective.direction != metric.direction:
                better = "higher" if metric.higher_is_better else "lower"
                errors.append(f"search.objectives[{i}].direction: {metric.name} is better {better}; use {metric.direction} or leave it out")
        named = [("objectives", o.metric) for o in self.search.objectives] + [("constraints", c.metric) for c in self.search.constraints]
        if self.cost.examples == 0:
            errors += [
                f"search.{where}: {name} is measured only with cost.examples > 0, and cost.examples is 0"
                for where, name in named
                if name in cost
            ]
        return errors

    def _check_space(self, path: str, spaces: dict[str, ParamSpace]) -> list[str]:
        errors = []
        for name, space in spaces.items():
            if name not in TUNABLE_SECTIONS:
                continue
            candidates: dict[str, Any] = {"low": space.low, "high": space.high}
            candidates.update({f"choices[{i}]": v for i, v in enumerate(space.choices or [])})
            candidates.update({f"values[{i}]": v for i, v in enumerate(space.values or [])})
            domain = setting_domains()[name]
            section_name, key = tunable_field(name)
            section = getattr(self, section_name)
            for where, value in candidates.items():
                if value is None:
                    continue
                if domain is not None and value not in domain:
                    errors.append(choice_error(f"{path}.{name}.{where}", value, domain))
                    continue
                check = getattr(replace(section, **{key: value}), "check", None)
                problems = check("") if check is not None else []  # a section without checks: its type is all there is
                errors += [f"{path}.{name}.{where}: {p.split(': ', 1)[1]}" for p in problems if p.startswith(f".{key}:")]
        return errors

    def with_params(self, params: dict[str, Any], **sections: Any) -> ExperimentConfig:
        """This config with searched values applied, each to its section (`TUNABLE_SECTIONS`: hyperparameters to
        `training`, decoding settings to `generation`, `augment.*` to `augment`, ...; searched augmentation with no
        methods named uses the default ones); other `sections` (e.g. `search`) replaced as given. `source_file` is kept."""
        changed: dict[str, dict[str, Any]] = {}
        for name, value in params.items():
            if name in TUNABLE_SECTIONS:
                section, key = tunable_field(name)
                changed.setdefault(section, {})[key] = value
        # every tunable section a copy, changed or not: the caller may adjust a trial's without touching this config
        updated_sections = {section: replace(getattr(self, section), **changed.get(section, {})) for section in _SECTIONS}
        augment = updated_sections["augment"]
        if "augment" in changed and not augment.methods:
            augment.methods = list(DEFAULT_AUGMENT_METHODS)
        updated = replace(self, **{**updated_sections, **sections})
        updated.source_file = self.source_file  # not an init field: `replace` drops it
        return updated

    def tunable_values(self) -> dict[str, Any]:
        """Every setting a search space may name, by that name, with this config's value."""
        values = {}
        for name in TUNABLE_SECTIONS:
            section, key = tunable_field(name)
            values[name] = getattr(getattr(self, section), key)
        return values

    def inapplicable(self, space: Mapping[str, ParamSpace] | None = None) -> set[str]:
        """The tunable settings that have no effect with this config's values: their built-in dependency, or the
        `when:` of `space`, fails (e.g. `temperature` with `decoding: greedy`)."""
        return inapplicable(conditions(space), self.tunable_values())

    @property
    def spec(self) -> TaskSpec:
        """What this config's task is: its metrics, columns, model kind (`mlops.tasks`)."""
        return spec_for(self.task)

    @property
    def mlflow_experiment(self) -> str:
        return self.experiment_name or self.name
