"""The one registry of tasks, and the tables derived from it: the metrics each task logs and searches, and the
catalogue of every metric a gate may name. The tables are read live, so a task registered later is in them."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from mlops.errors import ConfigError
from mlops.tasks._spec import MetricSpec, TaskSpec

V = TypeVar("V")

_SPECS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Make `spec` known to the config, the metric tables and every caller of `spec_for`."""
    if spec.name in _SPECS and _SPECS[spec.name] != spec:
        raise ValueError(f"task {spec.name!r} is registered already, with another spec")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Forget a task (tests that register a toy one)."""
    _SPECS.pop(name, None)


def task_names() -> tuple[str, ...]:
    return tuple(_SPECS)


def suggestion(value: str, valid: list[str]) -> str:
    """`(did you mean 'x'?)` for the nearest valid value, else the list of valid ones."""
    match = difflib.get_close_matches(value, valid, n=1, cutoff=0.6)
    return f"(did you mean '{match[0]}'?)" if match else f"(use one of {', '.join(valid)})"


def unknown_task(path: str, name: str) -> str:
    """The one error for a task name no spec is registered under, with the nearest one."""
    return f"{path}: unknown task '{name}' {suggestion(name, list(_SPECS))}"


def spec_for(name: str) -> TaskSpec:
    """The spec of task `name`; a `ConfigError` naming the nearest task if there is none."""
    if name not in _SPECS:
        raise ConfigError(unknown_task("task", name))
    return _SPECS[name]


def resolve(reference: str) -> Any:
    """What a spec's "module:attribute" reference names, imported now (by the layer that runs it)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


class _Table(Mapping[str, V]):
    """A read-only mapping computed from the registered specs each time it is read."""

    def __init__(self, compute: Callable[[], dict[str, V]]) -> None:
        self._compute = compute

    def __getitem__(self, key: str) -> V:
        return self._compute()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._compute())

    def __len__(self) -> int:
        return len(self._compute())

    def __repr__(self) -> str:
        return repr(self._compute())


def _metric_catalogue() -> dict[str, MetricSpec]:
    catalogue: dict[str, MetricSpec] = {}
    for spec in _SPECS.values():
        for metric in spec.metrics:
            known = catalogue.setdefault(metric.name, metric)
            if known != metric:
                raise ValueError(f"metric {metric.name!r}: task {spec.name!r} declares it unlike another task does")
    return catalogue


# Validation-split metrics the sweep can optimise, per task.
SEARCH_METRICS: Mapping[str, tuple[str, ...]] = _Table(lambda: {n: s.metric_names("eval") for n, s in _SPECS.items()})
# Metrics the run of a trained model logs, per task (what a promotion gate can judge): validation, then test.
LOGGED_METRICS: Mapping[str, tuple[str, ...]] = _Table(lambda: {n: s.metric_names() for n, s in _SPECS.items()})
# Every metric any task logs, by name (a metric two tasks log is declared alike by both), and those a gate may name.
METRICS: Mapping[str, MetricSpec] = _Table(_metric_catalogue)
GATE_METRICS: Mapping[str, MetricSpec] = _Table(lambda: {n: m for n, m in _metric_catalogue().items() if m.gate})
