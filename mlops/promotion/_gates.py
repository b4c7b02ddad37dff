"""Where a gate decides: compare a candidate's metrics with a policy's thresholds and the current alias holder."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops.promotion._policy import AliasPolicy, Gate


@dataclass
class GateOutcome:
    metric: str
    value: float | None
    rule: str
    passed: bool

    def describe(self) -> str:
        shown = "missing" if self.value is None else f"{self.value:.4f}"
        return f"{self.metric}={shown} {self.rule}: {'pass' if self.passed else 'FAIL'}"


@dataclass
class GateReport:
    alias: str
    outcomes: list[GateOutcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return f"{self.alias} gate {verdict}: " + "; ".join(o.describe() for o in self.outcomes)


def _compare(value: float, bound: float, gate: Gate, kind: str) -> bool:
    if kind == "min":
        return value >= bound
    if kind == "max":
        return value <= bound
    return value >= bound if gate.higher_is_better else value <= bound  # not worse than the holder


def decide(
    alias: str,
    rules: AliasPolicy,
    candidate: dict[str, float],
    holders: dict[str, dict[str, float] | None],
) -> GateReport:
    """Evaluate every gate for `alias`.

    `holders` maps an alias to the metrics of the version that holds it now (None if nobody
    does); a `not_worse_than` rule against an empty alias passes, and says so.
    """
    report = GateReport(alias)
    for gate in rules.gates:
        value = candidate.get(gate.metric)
        checks: list[tuple[str, float | None, str]] = []
        if gate.min is not None:
            checks.append(("min", gate.min, f">= {gate.min}"))
        if gate.max is not None:
            checks.append(("max", gate.max, f"<= {gate.max}"))
        if gate.not_worse_than is not None:
            holder = holders.get(gate.not_worse_than)
            current = holder.get(gate.metric) if holder else None
            if current is None:
                report.outcomes.append(GateOutcome(gate.metric, value, f"vs {gate.not_worse_than}: no current holder", value is not None))
            else:
                checks.append(("holder", current, f"not worse than {gate.not_worse_than} ({current:.4f})"))
        for kind, bound, rule in checks:
            passed = value is not None and bound is not None and _compare(value, bound, gate, kind)
            report.outcomes.append(GateOutcome(gate.metric, value, rule, passed))
    return report
