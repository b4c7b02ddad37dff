"""Where a gate decides: a candidate's metrics against a policy's thresholds and, with `compare`, against the
alias's current holder (the champion) through a paired-bootstrap confidence interval."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlops.registry.compare import BootstrapResult
from mlops.registry.policy import METRICS, AliasPolicy, Gate
from mlops.registry.speed import SideBySide
from mlops.tasks import INFER_LATENCY_P50
from mlops.tracking import GATE_TAG_PREFIX


@dataclass
class Champion:
    """The version holding the alias now, and how the challenger compared with it per metric."""

    version: str
    results: dict[str, BootstrapResult] = field(default_factory=dict)
    problem: str | None = None  # why no comparison could be made (the gate then fails)
    is_candidate: bool = False  # the candidate holds the alias already: nothing to compare


@dataclass
class Evidence:
    """What a decision rests on beside the candidate's metrics: how many test examples scored it, the baselines of
    its sweep, bootstrap intervals of the metrics judged on a bound (`on: lower_bound`), and with `no_slower_than`
    its latency timed side by side with the champion's (None: no champion to time against)."""

    examples: int | None = None
    baselines: dict[str, float] = field(default_factory=dict)  # e.g. baseline_test_f1 -> value
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (low, high)
    confidence: float = 0.95
    speed: SideBySide | None = None


@dataclass
class GateOutcome:
    metric: str
    value: float | None
    rule: str
    passed: bool
    bound: tuple[str, float] | None = None  # ("min" | "max", threshold)
    comparison: BootstrapResult | None = None
    interval: tuple[float, float] | None = None  # the bootstrap interval, when a bound of it was judged
    judged: str = "value"  # what the threshold was applied to: value, lower_bound or upper_bound
    baseline: float | None = None
    speed: SideBySide | None = None  # the side-by-side timing `no_slower_than` judged

    def describe(self) -> str:
        shown = "missing" if self.value is None else f"{self.value:.4f}"
        return f"{self.metric}={shown} {self.rule}: {'pass' if self.passed else 'FAIL'}"


@dataclass
class GateReport:
    alias: str
    outcomes: list[GateOutcome] = field(default_factory=list)
    decided_by: str = "thresholds"
    champion_version: str | None = None
    version: str | None = None  # the version decided on, once promotion records it
    awaiting_approval: bool = False  # passed, but the policy wants a person to approve the move (`mlops approve`)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "failed"
        waits = "; alias not moved: awaiting approval (mlops approve)" if self.awaiting_approval else ""
        return f"{self.alias} gate {verdict} ({self.decided_by}): " + "; ".join(o.describe() for o in self.outcomes) + waits

    def metric_records(self) -> dict[str, dict[str, Any]]:
        """Per gated metric: value, thresholds, champion value, delta, CI and verdict (the `gate.<alias>.<metric>` tags)."""
        records: dict[str, dict[str, Any]] = {}
        for o in self.outcomes:
            record = records.setdefault(
                o.metric,
                {
                    "metric": o.metric,
                    "value": o.value,
                    "threshold": {},
                    "champion_version": self.champion_version,
                    "champion_value": None,
                    "delta": None,
                    "ci": None,
                    "confidence": None,
                    "rule": self.decided_by,
                    "checks": [],
                    "verdict": "pass",
                },
            )
            if o.bound is not None:
                record["threshold"][o.bound[0]] = o.bound[1]
                record["judged"] = o.judged
            if o.interval is not None:
                record["interval"] = list(o.interval)
            if o.baseline is not None:
                record["baseline"] = o.baseline
            if o.comparison is not None:
                c = o.comparison
                record.update(champion_value=c.champion, delta=c.delta, ci=[c.low, c.high], confidence=c.confidence)
            if o.speed is not None and o.speed.problem is None:
                t = o.speed
                record.update(champion_version=t.champion_version, champion_value=t.champion_ms, delta=t.challenger_ms - t.champion_ms)
                record["side_by_side"] = {"ratio": t.ratio, "inputs": t.inputs, "repeats": t.repeats, "unit": "ms per input, batch 1"}
            record["checks"].append(o.describe())
            if not o.passed:
                record["verdict"] = "fail"
        return records


def _evidence_outcomes(gate: Gate, rules: AliasPolicy, value: float | None, evidence: Evidence) -> list[GateOutcome]:
    """Enough scored test examples to trust any threshold; and, with `beat_baseline`, more than the sweep's baseline."""
    out = []
    needed = gate.min_examples or rules.min_examples
    n = evidence.examples
    if n is None or n < needed:
        seen = "no per-example test scores" if n is None else f"{n} examples"
        out.append(GateOutcome(gate.metric, value, f"insufficient evidence: {seen} (needs {needed})", False))
    if gate.beat_baseline:
        name = METRICS[gate.metric].baseline if gate.metric in METRICS else None
        baseline = evidence.baselines.get(name) if name else None
        if baseline is None:
            out.append(GateOutcome(gate.metric, value, f"beat the baseline: no {name} logged by the sweep", False))
        else:
            passed = value is not None and (value > baseline if gate.higher_is_better else value < baseline)
            out.append(GateOutcome(gate.metric, value, f"beat the baseline ({name} {baseline:.4f})", passed, baseline=baseline))
    return out


def _threshold_outcomes(
    gate: Gate, value: float | None, holders: dict[str, dict[str, float] | None], evidence: Evidence | None
) -> list[GateOutcome]:
    out = []
    interval = evidence.intervals.get(gate.metric) if evidence is not None and gate.on == "lower_bound" else None
    for kind, bound in (("min", gate.min), ("max", gate.max)):
        if bound is None:
            continue
        judged, target = "value", value
        if gate.on == "lower_bound":
            judged = "lower_bound" if kind == "min" else "upper_bound"
            target = None if interval is None else interval[0] if kind == "min" else interval[1]
        passed = target is not None and (target >= bound if kind == "min" else target <= bound)
        rule = f"{'>=' if kind == 'min' else '<='} {bound}"
        if gate.on == "lower_bound":
            confidence = evidence.confidence if evidence is not None else 0.95
            shown = "no per-example scores" if interval is None else f"[{interval[0]:.4f}, {interval[1]:.4f}]"
            rule = f"{judged.replace('_', ' ')} of the {confidence:.0%} interval {shown} {rule}"
        out.append(GateOutcome(gate.metric, value, rule, passed, bound=(kind, bound), interval=interval, judged=judged))
    if gate.not_worse_than is not None:
        holder = holders.get(gate.not_worse_than)
        current = holder.get(gate.metric) if holder else None
        if current is None:
            out.append(GateOutcome(gate.metric, value, f"vs {gate.not_worse_than}: no current holder", value is not None))
        else:
            passed = value is not None and (value >= current if gate.higher_is_better else value <= current)
            out.append(GateOutcome(gate.metric, value, f"not worse than {gate.not_worse_than} ({current:.4f})", passed))
    return out


def _comparison_outcomes(
    alias: str, rules: AliasPolicy, candidate: dict[str, float], champion: Champion | None
) -> tuple[str, list[GateOutcome]]:
    compare = rules.compare
    metrics = rules.compared_metrics()
    if compare is None or not metrics:
        return "thresholds", []
    if champion is None:
        return f"thresholds alone: no champion holds '{alias}'", []
    if champion.is_candidate:
        return f"thresholds alone: v{champion.version} already holds '{alias}'", []
    if champion.problem is not None:
        return f"{compare.rule} vs champion v{champion.version}: {champion.problem}", [
            GateOutcome(m, candidate.get(m), f"vs champion v{champion.version}: {champion.problem}", False) for m in metrics
        ]
    bound = compare.margin if compare.rule == "superiority" else -compare.margin
    outcomes = []
    for metric in metrics:
        r = champion.results[metric]
        rule = (
            f"{compare.rule} vs champion v{champion.version} ({r.champion:.4f}): delta {r.delta:+.4f}, "
            f"{r.confidence:.0%} CI [{r.low:+.4f}, {r.high:+.4f}] must lie above {bound:+.4f}"
        )
        outcomes.append(GateOutcome(metric, r.challenger, rule, r.low > bound, comparison=r))
    how = f"{compare.confidence:.0%} paired bootstrap, {compare.n_bootstrap} resamples, seed {compare.seed}, margin {compare.margin}"
    return f"{compare.rule} over champion v{champion.version} ({how})", outcomes


def _speed_outcomes(rules: AliasPolicy, evidence: Evidence | None) -> list[GateOutcome]:
    """`no_slower_than`: the challenger's latency against the champion's, timed side by side (nothing to judge
    without a champion, or when the candidate holds the alias already)."""
    factor = rules.no_slower_than
    speed = evidence.speed if evidence is not None else None
    if factor is None or speed is None:
        return []
    rule = f"no slower than champion v{speed.champion_version} x{factor}"
    if speed.problem is not None:
        return [GateOutcome(INFER_LATENCY_P50, None, f"{rule}: {speed.problem}", False)]
    limit = speed.champion_ms * factor
    rule = f"{rule}: {speed.describe()}"
    passed = speed.challenger_ms <= limit
    return [GateOutcome(INFER_LATENCY_P50, speed.challenger_ms, rule, passed, bound=("max", limit), judged="side_by_side", speed=speed)]


def decide(
    alias: str,
    rules: AliasPolicy,
    candidate: dict[str, float],
    holders: dict[str, dict[str, float] | None],
    champion: Champion | None = None,
    evidence: Evidence | None = None,
) -> GateReport:
    """Evaluate every gate for `alias`: the evidence (enough test examples, the baseline beaten), the thresholds,
    then the comparison with `champion` if the policy has one, and the side-by-side speed (`no_slower_than`).

    `holders` maps an alias to the metrics of its holder now (None if nobody holds it), for `not_worse_than`.
    `champion` is None when nobody holds `alias` (a first promotion): the thresholds alone decide, and the
    report says so. Without `evidence` only thresholds and the comparison are judged.
    """
    report = GateReport(alias, champion_version=champion.version if champion else None)
    for gate in rules.gates:
        value = candidate.get(gate.metric)
        if evidence is not None:
            report.outcomes += _evidence_outcomes(gate, rules, value, evidence)
        report.outcomes += _threshold_outcomes(gate, value, holders, evidence)
    report.decided_by, compared = _comparison_outcomes(alias, rules, candidate, champion)
    report.outcomes += compared + _speed_outcomes(rules, evidence)
    return report


def gate_tags(report: GateReport) -> dict[str, str]:
    """Model-version tags recording a decision: the verdict, the summary, and one JSON record per gated metric."""
    prefix = f"{GATE_TAG_PREFIX}{report.alias}"
    tags = {prefix: "passed" if report.passed else "failed", f"{prefix}.report": report.summary()}
    for metric, record in report.metric_records().items():
        tags[f"{prefix}.{metric}"] = json.dumps(record)
    return tags
