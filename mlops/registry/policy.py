"""Promotion policies: which metrics gate which alias, and how a challenger must compare with the alias's
current holder, read from reviewable YAML files: a team's own (`registry/NAME.yaml` or any path), or the policies
the packaged presets name, shipped as package data in `mlops/registry/policies/`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlops.config import ExperimentConfig, build, read_yaml
from mlops.errors import ConfigError
from mlops.tasks import GATE_METRICS

SHIPPED_POLICY_DIR = Path(__file__).resolve().parent / "policies"  # package data: the presets' policies
LEGACY_STAGES = ("Staging", "Production")


# Every metric a gate may name: what training and `evaluate` log for a model version's run, from the task specs.
METRICS = GATE_METRICS


def _unknown_metric(path: str, metric: str) -> str:
    match = difflib.get_close_matches(metric, list(METRICS), n=1, cutoff=0.6)
    hint = f"did you mean '{match[0]}'?" if match else f"known: {', '.join(sorted(METRICS))}"
    return f"{path}: unknown metric '{metric}' ({hint})"


@dataclass
class Gate:
    metric: str
    min: float | None = None
    max: float | None = None
    not_worse_than: str | None = None  # an alias whose current holder must not score better (point estimates)
    beat_baseline: bool = False  # the metric must exceed the baseline the sweep's parent run logged on the same split
    on: Literal["value", "lower_bound"] = "value"  # judge min (max) on the bootstrap interval's lower (upper) end
    min_examples: int | None = None  # fewer scored test examples fail the gate; default: the alias's min_examples

    @property
    def higher_is_better(self) -> bool:
        spec = METRICS.get(self.metric)
        return spec.higher_is_better if spec else True

    def check(self, path: str) -> list[str]:
        errors = []
        if self.min is None and self.max is None and self.not_worse_than is None and not self.beat_baseline:
            errors.append(f"{path}: a gate needs min, max, not_worse_than or beat_baseline")
        if self.min_examples is not None and self.min_examples < 1:
            errors.append(f"{path}.min_examples: must be >= 1, got {self.min_examples}")
        spec = METRICS.get(self.metric)
        if spec is None:
            return [*errors, _unknown_metric(f"{path}.metric", self.metric)]
        if self.beat_baseline and spec.baseline is None:
            with_baseline = ", ".join(m for m, s in METRICS.items() if s.baseline)
            errors.append(f"{path}.beat_baseline: {self.metric} has no baseline to beat; use one of {with_baseline}")
        if self.on == "lower_bound" and not spec.per_example:
            resampled = ", ".join(m for m, s in METRICS.items() if s.per_example)
            errors.append(f"{path}.on: lower_bound needs per-example scores to resample, which {self.metric} lacks; use one of {resampled}")
        if self.on == "lower_bound" and self.min is None and self.max is None:
            errors.append(f"{path}.on: lower_bound judges a min or max threshold; the gate has neither")
        for name in ("min", "max"):
            bound = getattr(self, name)
            if bound is not None and not spec.low <= bound <= spec.high:
                errors.append(f"{path}.{name}: {bound} is outside the range of {self.metric} [{spec.low}, {spec.high}]")
        if self.min is not None and self.max is not None and self.min > self.max:
            errors.append(f"{path}: min ({self.min}) exceeds max ({self.max})")
        return errors


@dataclass
class Compare:
    """How a challenger must compare with the alias's current holder (the champion), per metric, on the same
    test split: a paired bootstrap over the per-example scores gives a confidence interval for the difference."""

    rule: Literal["superiority", "non_inferiority"] = "superiority"
    margin: float = 0.0  # superiority: the interval must lie above +margin; non-inferiority: above -margin
    confidence: float = 0.95
    n_bootstrap: int = 2000
    seed: int = 0
    metrics: list[str] | None = None  # default: every gated metric that has per-example scores

    def check(self, path: str) -> list[str]:
        errors = []
        if not 0 <= self.margin < 1:
            errors.append(f"{path}.margin: must be in [0, 1), got {self.margin}")
        if self.rule == "non_inferiority" and self.margin <= 0:
            errors.append(f"{path}.margin: non_inferiority needs a margin > 0 (how much worse is still acceptable)")
        if not 0.5 <= self.confidence < 1:
            errors.append(f"{path}.confidence: must be in [0.5, 1), got {self.confidence}")
        if self.n_bootstrap < 100:
            errors.append(f"{path}.n_bootstrap: must be >= 100, got {self.n_bootstrap}")
        for i, metric in enumerate(self.metrics or []):
            spec = METRICS.get(metric)
            if spec is None:
                errors.append(_unknown_metric(f"{path}.metrics[{i}]", metric))
            elif not spec.per_example:
                supported = ", ".join(m for m, s in METRICS.items() if s.per_example)
                errors.append(f"{path}.metrics[{i}]: {metric} has no per-example scores to resample; use one of {supported}")
        return errors


@dataclass
class AliasPolicy:
    gates: list[Gate] = field(default_factory=list)
    compare: Compare | None = None
    min_examples: int = 30  # a version scored on fewer test examples fails every gate: insufficient evidence
    candidate_from: str | None = None  # `mlops promote --to <this alias>` judges that alias's holder (default: after_sweep's)
    legacy_stage: Literal["Staging", "Production"] | None = None  # stage set with `--legacy-stage` (default: from the alias name)
    approval: Literal["none", "required"] = "none"  # required: a version that passes waits for `mlops approve` to move the alias
    # The challenger's latency per input at batch 1 may exceed the champion's by at most this factor (1.10: 10 %),
    # both served models timed side by side in the deciding process (`mlops.registry.speed`); None: speed not compared.
    no_slower_than: float | None = None
    timing_repeats: int = 20  # timed passes over the inputs, per model, for `no_slower_than`

    def check(self, path: str) -> list[str]:
        errors = [] if self.gates else [f"{path}.gates: list at least one gate"]
        if self.min_examples < 1:
            errors.append(f"{path}.min_examples: must be >= 1, got {self.min_examples}")
        if self.no_slower_than is not None and not 0 < self.no_slower_than <= 100:
            errors.append(f"{path}.no_slower_than: a factor in (0, 100] (1.10: at most 10 % slower), got {self.no_slower_than}")
        if not 1 <= self.timing_repeats <= 1000:
            errors.append(f"{path}.timing_repeats: must be in [1, 1000], got {self.timing_repeats}")
        if self.compare is not None and self.compare.metrics is None and self.gates and not self.compared_metrics():
            errors.append(f"{path}.compare: none of the gated metrics has per-example scores; name them in compare.metrics")
        return errors

    def compared_metrics(self) -> list[str]:
        """The metrics the challenger is compared with the champion on (empty without `compare`)."""
        if self.compare is None:
            return []
        if self.compare.metrics is not None:
            return list(self.compare.metrics)
        gated = dict.fromkeys(g.metric for g in self.gates)
        return [m for m in gated if m in METRICS and METRICS[m].per_example]


@dataclass
class PromotionPolicy:
    model_name: str
    aliases: dict[str, AliasPolicy]
    after_sweep: str = "staging"  # the alias a sweep gates its best version for
    source_file: str = field(default="", init=False)

    def check(self, path: str) -> list[str]:
        errors = []
        if not self.aliases:
            errors.append("aliases: define at least one alias (e.g. staging)")
        elif self.after_sweep not in self.aliases:
            errors.append(f"after_sweep: unknown alias '{self.after_sweep}'; policy defines: {', '.join(self.aliases)}")
        for alias, rules in (self.aliases or {}).items():
            for i, gate in enumerate(rules.gates):
                if gate.not_worse_than is not None and gate.not_worse_than not in self.aliases:
                    errors.append(f"aliases.{alias}.gates[{i}].not_worse_than: unknown alias '{gate.not_worse_than}'")
            if rules.candidate_from is not None and (rules.candidate_from not in self.aliases or rules.candidate_from == alias):
                errors.append(f"aliases.{alias}.candidate_from: must name another alias of this policy, got '{rules.candidate_from}'")
        return errors

    def for_alias(self, alias: str) -> AliasPolicy:
        if alias not in self.aliases:
            raise ConfigError(f"no gates for alias '{alias}'; policy defines: {', '.join(self.aliases)}", source=self.source_file)
        return self.aliases[alias]

    def legacy_stage(self, alias: str) -> str:
        """The deprecated registry stage mirroring `alias`, for servers that still read stages."""
        stage: str | None = self.for_alias(alias).legacy_stage or next((s for s in LEGACY_STAGES if s.lower() == alias.lower()), None)
        if stage is None:
            raise ConfigError(
                f"aliases.{alias}.legacy_stage: alias '{alias}' has no legacy stage; set one of {', '.join(LEGACY_STAGES)}",
                source=self.source_file,
            )
        return stage


def resolve_policy_path(name_or_path: str, config_dir: Path | None = None) -> Path:
    """A path, or a name looked up as `registry/NAME.yaml` in the working directory or beside the config's folder,
    then as `NAME.yaml` beside the config, then among the policies shipped with the package."""
    candidates = [Path(name_or_path)]
    if not name_or_path.endswith((".yaml", ".yml")):
        stem = f"{name_or_path}.yaml"
        candidates = [
            Path("registry") / stem,
            *([config_dir.parent / "registry" / stem, config_dir / stem] if config_dir else []),
            SHIPPED_POLICY_DIR / stem,
        ]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"registry.policy: policy file not found (looked in {', '.join(map(str, candidates))})")


def _unquoted_on(data: object) -> object:
    """YAML 1.1 reads an unquoted `on:` key as the boolean true; in a gate it means the `on` rule."""
    aliases = data.get("aliases") if isinstance(data, dict) else None
    for rules in aliases.values() if isinstance(aliases, dict) else ():
        for gate in rules.get("gates") or [] if isinstance(rules, dict) else ():
            if isinstance(gate, dict) and True in gate:
                gate["on"] = gate.pop(True)
    return data


def load_policy(name_or_path: str, config_dir: Path | None = None) -> PromotionPolicy:
    path = resolve_policy_path(name_or_path, config_dir)
    data = _unquoted_on(read_yaml(path))
    errors: list[str] = []
    policy = build(PromotionPolicy, data, "", errors)
    if errors:
        raise ConfigError(errors, source=str(path))
    policy.source_file = str(path)
    return policy


def policy_for(config: ExperimentConfig) -> PromotionPolicy:
    """The promotion policy `config.registry` names (relative to the config's folder), checked to govern the model
    the config registers."""
    policy = load_policy(config.registry.policy, Path(config.source_file).parent)
    errors = []
    if policy.model_name != config.registry.model_name:
        errors.append(f"registry.model_name '{config.registry.model_name}' does not match the policy's model_name '{policy.model_name}'")
    logged = config.spec.metric_names()
    for alias, rules in policy.aliases.items():
        named = [(f"gates[{i}].metric", g.metric) for i, g in enumerate(rules.gates)]
        named += [(f"compare.metrics[{i}]", m) for i, m in enumerate(rules.compare.metrics or [])] if rules.compare else []
        errors += [
            f"aliases.{alias}.{where}: {metric} is never logged by {config.task}; use one of {', '.join(logged)}"
            for where, metric in named
            if metric not in logged
        ]
    if errors:
        raise ConfigError(errors, source=policy.source_file)
    return policy
