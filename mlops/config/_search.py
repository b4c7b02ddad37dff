"""The search sections of the experiment config: search spaces and when a setting applies, the sweep, the staged
pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints

from mlops.config._conditions import Condition
from mlops.config._data import AUGMENT_PARAMETERS, AugmentConfig
from mlops.config._serving import SERVING_PARAMETERS, ServingConfig
from mlops.config._training import (
    _ARCHITECTURE,
    BUDGET_PARAMETERS,
    DECODING_PARAMETERS,
    HYPERPARAMETERS,
    GenerationConfig,
    ModelConfig,
    TrainingConfig,
    _help,
)

# Every setting a search space may name, with the config section that holds it: a dotted name (`augment.synonym_p`)
# is that section's field, a bare one its own field (`learning_rate` in `training`, `max_length` in `model`).
TUNABLE_SECTIONS: dict[str, str] = {
    **dict.fromkeys(HYPERPARAMETERS, "training"),
    **dict.fromkeys(DECODING_PARAMETERS, "generation"),
    **BUDGET_PARAMETERS,
    **dict.fromkeys(AUGMENT_PARAMETERS, "augment"),
    **dict.fromkeys(SERVING_PARAMETERS, "serving"),
}
_SECTION_CLASSES: dict[str, type] = {
    "training": TrainingConfig,
    "generation": GenerationConfig,
    "model": ModelConfig,
    "augment": AugmentConfig,
    "serving": ServingConfig,
}


def tunable_field(name: str) -> tuple[str, str]:
    """The config section and field of tunable setting `name` (a key of `TUNABLE_SECTIONS`)."""
    section = TUNABLE_SECTIONS[name]
    return section, name.removeprefix(f"{section}.")


# When a setting has any effect at all (the one table of these dependencies): a search draws it only then, and a
# trial run logs it only then. A search space's `when:` extends these, or replaces the test of the same setting.
BUILTIN_CONDITIONS: dict[str, Condition] = {
    "temperature": {"decoding": "sample"},
    "top_p": {"decoding": "sample"},
    "num_beams": {"decoding": "beam"},
    "length_penalty": {"decoding": "beam"},
    "serving.merge_adapter": {"adapter": "lora"},  # prefix tuning has nothing to merge; bottleneck adapters are no PEFT layers
    "num_cycles": {"lr_scheduler": "cosine_with_restarts"},
    "num_virtual_tokens": {"adapter": "prefix"},
    "reduction_factor": {"adapter": "bottleneck"},
    **{name: {"augment.multiplier": {"gt": 0}} for name in AUGMENT_PARAMETERS if name != "augment.multiplier"},
}


@dataclass
class ParamSpace:
    """One searchable hyperparameter: float/int with bounds, or categorical choices."""

    type: Literal["float", "int", "categorical"] = field(metadata=_help("float or int (between low and high) or categorical (choices)"))
    low: float | None = field(default=None, metadata=_help("the lowest value (float, int)"))
    high: float | None = field(default=None, metadata=_help("the highest value (float, int)"))
    log: bool = field(default=False, metadata=_help("draw on a log scale (float, int)"))
    step: float | None = field(default=None, metadata=_help("spacing of the values drawn (float, int)"))
    choices: list[Any] | None = field(default=None, metadata=_help("the values drawn from (categorical)"))
    values: list[Any] | None = field(default=None, metadata=_help("the points the grid sampler visits"))
    when: dict[str, Any] | None = field(
        default=None,
        metadata=_help(
            "drawn only when these hold, e.g. {decoding: sample} or {augment.multiplier: {gt: 0}} (operators eq, ne, gt, ge, lt, "
            "le, in); adds to the built-in dependencies (BUILTIN_CONDITIONS), or replaces the test of the same setting"
        ),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.type == "categorical":
            if not self.choices:
                errors.append(f"{path}.choices: a categorical parameter needs a non-empty list")
        else:
            if self.low is None or self.high is None:
                errors.append(f"{path}: a {self.type} parameter needs low and high")
            elif self.low > self.high:
                errors.append(f"{path}: low ({self.low}) must not exceed high ({self.high})")
            elif self.log and self.low <= 0:
                errors.append(f"{path}.low: must be > 0 for a log-scale parameter, got {self.low}")
        return errors

    def grid_values(self) -> list[Any]:
        if self.values:
            return list(self.values)
        if self.type == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None  # guaranteed by check()
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1))
        return [self.low, self.high]


def conditions(space: Mapping[str, ParamSpace] | None = None) -> dict[str, Condition]:
    """When each setting applies: the built-in dependencies, with `space`'s `when:` added (a test of the same
    controlling setting replaces the built-in one)."""
    out: dict[str, Condition] = dict(BUILTIN_CONDITIONS)
    for name, p in (space or {}).items():
        if p.when:
            out[name] = {**out.get(name, {}), **p.when}
    return out


def setting_domains() -> dict[str, tuple[Any, ...] | None]:
    """The values each tunable setting (by its search-space name) can take: its choices, or None for a number."""
    domains: dict[str, tuple[Any, ...] | None] = {}
    hints = {section: get_type_hints(cls) for section, cls in _SECTION_CLASSES.items()}
    for name in TUNABLE_SECTIONS:
        section, key = tunable_field(name)
        tp = hints[section][key]
        domains[name] = get_args(tp) if get_origin(tp) is Literal else (True, False) if tp is bool else None
    return domains


# Samplers that Optuna runs on a study with several objectives, and those that take a `constraints_func`.
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "nsgaii", "gp", "random", "qmc", "grid")
CONSTRAINED_SAMPLERS = ("tpe", "nsgaii", "gp")


@dataclass
class Objective:
    """One objective of the study: any metric a trial's run logs, and which way is better."""

    metric: str = field(metadata=_help("a metric every trial's run logs (eval_f1, infer_latency_ms_p95, ...)"))
    direction: Literal["maximize", "minimize"] | None = field(
        default=None,
        metadata=_help("whether higher or lower is better; default: the task metric's own (latency, bytes, loss: minimize)"),
    )

    @property
    def sense(self) -> Literal["maximize", "minimize"]:
        """`direction`, which loading fills in from the task's metric where the config leaves it out."""
        if self.direction is None:
            raise ValueError(f"objective {self.metric}: no direction (loading fills it from the task's metrics)")
        return self.direction

    def check(self, path: str) -> list[str]:
        blank = self.metric is not None and not self.metric.strip()  # None: missing, reported as such
        return [f"{path}.metric: name a metric the trial runs log, e.g. eval_f1"] if blank else []


@dataclass
class Constraint:
    """A bound on a metric a trial's run logs; a trial outside it is infeasible: recorded, never selected."""

    metric: str = field(metadata=_help("a metric every trial's run logs"))
    max: float | None = field(default=None, metadata=_help("a trial above this is infeasible"))
    min: float | None = field(default=None, metadata=_help("a trial below this is infeasible"))

    def check(self, path: str) -> list[str]:
        blank = self.metric is not None and not self.metric.strip()
        errors = [f"{path}.metric: name a metric the trial runs log, e.g. eval_loss"] if blank else []
        if self.max is None and self.min is None:
            errors.append(f"{path}: give max, min or both")
        elif self.max is not None and self.min is not None and self.min > self.max:
            errors.append(f"{path}: min ({self.min}) must not exceed max ({self.max})")
        return errors

    def violation(self, value: float) -> float:
        """Optuna's constraint value: <= 0 when `value` is inside the bounds, else how far outside."""
        over = value - self.max if self.max is not None else -float("inf")
        under = self.min - value if self.min is not None else -float("inf")
        return max(over, under)


@dataclass
class WithinRule:
    """The cheapest trial by `then` among those whose `metric` is within `of_best` of the best feasible value."""

    metric: str = field(metadata=_help("the quality objective the candidates must be near the best of"))
    of_best: float = field(metadata=_help("how far below (or above, when minimised) the best `metric` a candidate may be, in its units"))
    then: str = field(metadata=_help("the objective that picks among the candidates (its best direction)"))

    def check(self, path: str) -> list[str]:
        if self.of_best is not None and self.of_best < 0:
            return [f"{path}.of_best: must be >= 0 (in units of {self.metric}), got {self.of_best}"]
        return []


@dataclass
class SelectWithin:
    within: WithinRule = field(metadata=_help("the cheapest by `then` among the trials within `of_best` of the best `metric`"))


@dataclass
class SearchConfig:
    n_trials: int = field(default=6, metadata=_help("total trials of the study, across all workers"))
    sampler: Literal["tpe", "random", "grid", "cmaes", "qmc", "gp", "nsgaii"] = field(
        default="tpe", metadata=_help("Optuna's sampler, seeded")
    )
    pruner: Literal["none", "median", "hyperband"] = field(
        default="none", metadata=_help("stop hopeless trials at an evaluation point (once per epoch)")
    )
    metric: str = field(default="eval_f1", metadata=_help("the child-run metric the study optimises"))
    direction: Literal["maximize", "minimize"] = field(default="maximize", metadata=_help("whether a higher or a lower metric is better"))
    objectives: list[Objective] = field(
        default_factory=list,
        metadata=_help("several objectives (any metric a trial run logs, each with a direction): a multi-objective study; default: metric"),
    )
    constraints: list[Constraint] = field(
        default_factory=list, metadata=_help("bounds (max, min) on metrics a trial run logs; a trial outside them is never selected")
    )
    select: str | SelectWithin | None = field(
        default=None,
        metadata=_help(
            "which trial wins: best:<metric> (default: the first objective's), knee (the Pareto front's point nearest the "
            "ideal), or {within: {metric, of_best, then}} (the cheapest by `then` within `of_best` of the best `metric`)"
        ),
    )
    space: dict[str, ParamSpace] = field(
        default_factory=dict, metadata=_help("the searched settings by name: hyperparameters, structural keys, decoding, augment.*")
    )
    timeout: float | None = field(default=None, metadata=_help("seconds after which a worker starts no new trial"))
    heartbeat_interval: int = field(
        default=60, metadata=_help("seconds between a running trial's heartbeats; a trial silent for twice that is failed and retried once")
    )
    on_oom: Literal["halve_batch", "prune"] = field(
        default="halve_batch",
        metadata=_help(
            "a trial out of device memory: retry it with half the per-device batch and twice the gradient accumulation, "
            "down to batch 1 (halve_batch), or prune it (prune)"
        ),
    )
    seeds_per_trial: int = field(
        default=1, metadata=_help("training seeds per trial (seed, seed+1, ...); Optuna is told their mean, pruners see its running value")
    )
    confirm_top_k: int = field(
        default=0, metadata=_help("after the search, re-train the k best trials with fresh seeds and register the best by that mean")
    )
    confirm_seeds: int = field(default=3, metadata=_help("fresh training seeds per confirmed trial"))
    keep_checkpoints: int = field(
        default=1, metadata=_help("a trial's newest checkpoints kept while it runs (one per evaluation point); 0 saves none")
    )
    checkpoint_dir: str | None = field(
        default=None,
        metadata=_help("where trials checkpoint: a folder (shared storage), `mlflow` (run artifacts); default beside the study"),
    )
    keep_finished_checkpoints: bool = field(
        default=False, metadata=_help("keep a trial's checkpoints after it ends, instead of deleting them")
    )
    gap_threshold: float = field(
        default=0.1,
        metadata=_help("the report and the console flag a trial whose generalization_gap (train - validation) exceeds this"),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.n_trials < 1:
            errors.append(f"{path}.n_trials: must be >= 1, got {self.n_trials}")
        errors += self._check_seeds(path)
        errors += self._check_objectives(path)
        if self.timeout is not None and self.timeout <= 0:
            errors.append(f"{path}.timeout: must be > 0 seconds, got {self.timeout}")
        if self.heartbeat_interval < 1:
            errors.append(f"{path}.heartbeat_interval: must be >= 1 second, got {self.heartbeat_interval}")
        if self.keep_checkpoints < 0:
            errors.append(f"{path}.keep_checkpoints: must be >= 0 (0 saves no checkpoint), got {self.keep_checkpoints}")
        if not self.gap_threshold >= 0:
            errors.append(f"{path}.gap_threshold: must be >= 0, got {self.gap_threshold}")
        if self.checkpoint_dir is not None and not self.checkpoint_dir.strip():
            errors.append(f"{path}.checkpoint_dir: give a folder or `mlflow`, or leave it out (beside the study)")
        for name in self.space:
            if name not in TUNABLE_SECTIONS:
                errors.append(f"{path}.space.{name}: not a tunable hyperparameter; use one of {', '.join(TUNABLE_SECTIONS)}")
        return errors

    def objective_list(self) -> list[Objective]:
        """The study's objectives: `objectives`, or the one of `metric` and `direction`."""
        return list(self.objectives) or [Objective(self.metric, self.direction)]

    @property
    def multi_objective(self) -> bool:
        return len(self.objective_list()) > 1

    @property
    def selection_rule(self) -> str | SelectWithin:
        """`select`, or by default the best by the first objective."""
        return self.select if self.select is not None else f"best:{self.objective_list()[0].metric}"

    def _check_objectives(self, path: str) -> list[str]:
        errors = []
        names = [o.metric for o in self.objective_list() if o.metric and o.metric.strip()]  # others are reported as such
        if len(set(names)) < len(names):
            errors.append(f"{path}.objectives: each metric at most once, got {', '.join(names)}")
        if self.multi_objective:
            n = len(names)
            if self.sampler not in MULTI_OBJECTIVE_SAMPLERS:
                ok = ", ".join(MULTI_OBJECTIVE_SAMPLERS)
                errors.append(f"{path}.sampler: {self.sampler} cannot optimise {n} objectives; use one of {ok}")
            if self.pruner != "none":
                errors.append(f"{path}.pruner: Optuna cannot prune a study with {n} objectives; use pruner none")
        return errors + self._check_select(path, names) if len(names) == len(self.objective_list()) else errors

    def _check_select(self, path: str, names: list[str]) -> list[str]:
        errors = []
        rule = self.selection_rule
        if isinstance(rule, SelectWithin):
            for key in ("metric", "then"):
                name = getattr(rule.within, key, None)  # no `within`: reported as missing
                if name is not None and name not in names:
                    errors.append(f"{path}.select.within.{key}: '{name}' is not an objective; use one of {', '.join(names)}")
        elif rule == "knee":
            if len(names) < 2:
                errors.append(f"{path}.select: knee needs two or more objectives (search.objectives), got {len(names)}")
        elif rule.startswith("best:"):
            if rule[len("best:") :] not in names:
                errors.append(f"{path}.select: '{rule[len('best:') :]}' is not an objective; use best:<one of {', '.join(names)}>")
        else:
            errors.append(f"{path}.select: must be best:<metric>, knee or {{within: {{metric, of_best, then}}}}, got {rule!r}")
        return errors

    def _check_seeds(self, path: str) -> list[str]:
        errors = []
        if self.seeds_per_trial < 1:
            errors.append(f"{path}.seeds_per_trial: must be >= 1, got {self.seeds_per_trial}")
        if self.confirm_top_k < 0:
            errors.append(f"{path}.confirm_top_k: must be >= 0 (0: no confirmation), got {self.confirm_top_k}")
        elif self.confirm_top_k > self.n_trials:
            errors.append(f"{path}.confirm_top_k: cannot confirm more trials than n_trials ({self.n_trials}), got {self.confirm_top_k}")
        if self.confirm_seeds < 1:
            errors.append(f"{path}.confirm_seeds: must be >= 1, got {self.confirm_seeds}")
        return errors


STAGES = ("data", "hyperparameters", "structure")
STRUCTURE_PARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", *_ARCHITECTURE)


def _default_fractions() -> dict[str, float]:
    return {"data": 0.7, "hyperparameters": 0.2, "structure": 0.1}  # the tuning guide's split


@dataclass
class PipelineConfig:
    """The staged practice run by `main`: data, then hyperparameters, then structure, then promote."""

    n_trials: int = field(default=12, metadata=_help("the total trial budget, split between the stages by `fractions`"))
    timeout: float | None = field(default=None, metadata=_help("total seconds, split between the stages like the trials"))
    fractions: dict[str, float] = field(
        default_factory=_default_fractions,
        metadata=_help("shares of the budget for the data, hyperparameters and structure stages (the guide: 0.7/0.2/0.1)"),
    )
    structure_space: dict[str, ParamSpace] = field(
        default_factory=dict, metadata=_help("structural choices searched with the best hyperparameters fixed; default: lora_r, lora_alpha")
    )
    data_space: dict[str, ParamSpace] = field(
        default_factory=dict,
        metadata=_help("augmentation settings searched first; default: augment.synonym_p 0..0.3, augment.multiplier 0..2"),
    )

    def check(self, path: str) -> list[str]:
        errors = []
        if self.n_trials < 2:
            errors.append(f"{path}.n_trials: must be >= 2 (one per searching stage), got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            errors.append(f"{path}.timeout: must be > 0 seconds, got {self.timeout}")
        if set(self.fractions) != set(STAGES):
            errors.append(f"{path}.fractions: needs exactly the stages {', '.join(STAGES)}, got {', '.join(self.fractions) or 'none'}")
        elif any(f < 0 for f in self.fractions.values()) or abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            errors.append(f"{path}.fractions: must be >= 0 and sum to 1, got {self.fractions}")
        elif self.fractions["hyperparameters"] + self.fractions["structure"] <= 0:
            errors.append(f"{path}.fractions: the hyperparameter and structure stages cannot both get 0")
        for name in self.structure_space:
            if name not in STRUCTURE_PARAMETERS:
                errors.append(f"{path}.structure_space.{name}: not a structural choice; use one of {', '.join(STRUCTURE_PARAMETERS)}")
        for name in self.data_space:
            if name not in AUGMENT_PARAMETERS:
                errors.append(f"{path}.data_space.{name}: not an augmentation setting; use one of {', '.join(AUGMENT_PARAMETERS)}")
        return errors
