"""When a setting applies: conditions such as `{decoding: sample}` or `{augment.multiplier: {gt: 0}}`, evaluated in
dependency order (a setting whose controlling setting does not apply does not apply either), and checked at load time."""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from mlops.errors import ConfigError

# A condition maps each controlling setting to a test: a plain value (equality) or a mapping of operators.
Condition = Mapping[str, Any]


class Searched(Protocol):
    """What the checks read of a search-space entry (a `ParamSpace`)."""

    @property
    def type(self) -> str: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def choices(self) -> list[Any] | None: ...
    @property
    def when(self) -> dict[str, Any] | None: ...


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "in": lambda value, allowed: value in allowed,
}
_ORDERING = ("gt", "ge", "lt", "le")


def _tests(test: Any) -> dict[str, Any]:
    """`sample` -> {eq: sample}; a mapping of operators stays as it is."""
    return dict(test) if isinstance(test, Mapping) else {"eq": test}


def holds(test: Any, value: Any) -> bool:
    """Whether `value` passes `test` (every operator of it)."""
    return all(OPERATORS[op](value, operand) for op, operand in _tests(test).items())


def applies(condition: Condition, values: Mapping[str, Any], inapplicable: Collection[str]) -> bool:
    """Whether a setting with `condition` applies, given every setting's value and those that do not apply."""
    return all(name not in inapplicable and holds(test, values[name]) for name, test in condition.items())


def _cycle(conditions: Mapping[str, Condition]) -> list[str] | None:
    """A chain of settings that depend on each other in a circle, if any (e.g. [a, b, a])."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for controller in conditions.get(name, {}):
            found = visit(controller, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in conditions:
        found = visit(name, [])
        if found:
            return found
    return None


def dependency_order(names: Iterable[str], conditions: Mapping[str, Condition]) -> list[str]:
    """`names`, each after every setting among them that its condition names (otherwise in the given order)."""
    wanted = list(dict.fromkeys(names))
    cycle = _cycle({name: conditions.get(name, {}) for name in wanted})
    if cycle:
        raise ConfigError(f"when: settings that depend on each other in a circle: {' -> '.join(cycle)}")
    ordered: list[str] = []

    def place(name: str) -> None:
        if name in ordered:
            return
        for controller in conditions.get(name, {}):
            if controller in wanted:
                place(controller)
        ordered.append(name)

    for name in wanted:
        place(name)
    return ordered


def inapplicable(conditions: Mapping[str, Condition], values: Mapping[str, Any]) -> set[str]:
    """The settings whose condition fails for these values (or names a setting that does not apply)."""
    skipped: set[str] = set()
    for name in dependency_order([*conditions, *(c for condition in conditions.values() for c in condition)], conditions):
        if not applies(conditions.get(name, {}), values, skipped):
            skipped.add(name)
    return skipped


def depends_on_searched(space: Collection[str], conditions: Mapping[str, Condition]) -> bool:
    """Whether some setting of `space` applies or not depending on another one drawn with it (a conditional space)."""

    def controllers(name: str, seen: frozenset[str]) -> set[str]:
        direct = set(conditions.get(name, {})) - seen
        return direct.union(*(controllers(c, seen | {name}) for c in direct))

    return any(controllers(name, frozenset()) & (set(space) - {name}) for name in space)


def _domain_errors(where: str, controller: str, tests: dict[str, Any], domain: tuple[Any, ...] | None) -> list[str]:
    """Operators, and operands the controlling setting can never take (its type or its fixed list of values)."""
    errors = []
    for op, operand in tests.items():
        if op not in OPERATORS:
            errors.append(f"{where}.{op}: unknown operator; use a value or one of {', '.join(OPERATORS)}")
            continue
        if op in _ORDERING:
            if domain is not None:
                errors.append(f"{where}.{op}: {controller} takes {', '.join(map(str, domain))}, not a number; use eq, ne or in")
            elif isinstance(operand, bool) or not isinstance(operand, int | float):
                errors.append(f"{where}.{op}: expected a number, got {operand!r}")
            continue
        if op == "in" and (not isinstance(operand, list) or not operand):
            errors.append(f"{where}.in: expected a non-empty list of values, got {operand!r}")
            continue
        for value in operand if op == "in" else [operand]:
            if domain is not None and not any(value == v and type(value) is type(v) for v in domain):
                errors.append(f"{where}: {value!r} is not a value of {controller}; it takes {', '.join(map(str, domain))}")
            elif domain is None and (isinstance(value, bool) or not isinstance(value, int | float)):
                errors.append(f"{where}: {controller} is a number, got {value!r}")
    return errors


def _drawn(p: Searched) -> tuple[list[Any] | None, tuple[float, float] | None]:
    """What a search space draws: its choices, or its [low, high] range."""
    if p.type == "categorical":
        return list(p.choices or []), None
    if p.low is None or p.high is None:
        return None, None
    return None, (float(p.low), float(p.high))


def _possible(test: Any, p: Searched) -> bool:
    """Whether some value `p` draws can pass `test` (each operator on its own, for a range)."""
    choices, bounds = _drawn(p)
    if choices is not None:
        return any(_safe_holds(test, v) for v in choices)
    if bounds is None:
        return True
    low, high = bounds
    reach = {
        "eq": lambda v: low <= v <= high,
        "ne": lambda v: not low == high == v,
        "gt": lambda v: high > v,
        "ge": lambda v: high >= v,
        "lt": lambda v: low < v,
        "le": lambda v: low <= v,
        "in": lambda vs: any(low <= v <= high for v in vs),
    }
    return all(reach[op](operand) for op, operand in _tests(test).items())


def _safe_holds(test: Any, value: Any) -> bool:
    try:
        return holds(test, value)
    except TypeError:  # e.g. a number compared with a string: reported by the domain check
        return False


def _nearest(name: str, valid: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else f"; use one of {', '.join(valid)}"


def when_errors(
    path: str, space: Mapping[str, Searched], conditions: Mapping[str, Condition], domains: Mapping[str, tuple[Any, ...] | None]
) -> list[str]:
    """Every problem of the `when:` conditions of `space` (at `path`): unknown settings, unknown operators, values the
    controlling setting cannot take or that the space never draws, and circles. `conditions` are the effective ones
    (built in, with the space's own), `domains` the values each tunable setting can take (None: any number)."""
    errors = []
    for name, p in space.items():
        for controller, test in (p.when or {}).items():
            where = f"{path}.{name}.when.{controller}"
            if controller not in domains:
                errors.append(f"{where}: not a tunable setting{_nearest(controller, domains)}")
            elif controller == name:
                errors.append(f"{where}: a setting cannot depend on itself")
            elif isinstance(test, Mapping) and not test:
                errors.append(f"{where}: an empty test; give a value or operators such as {{gt: 0}}")
            else:
                errors += _domain_errors(where, controller, _tests(test), domains[controller])
        if any(e.startswith(f"{path}.{name}.when") for e in errors):
            continue
        for controller, test in conditions.get(name, {}).items():
            if controller in space and controller != name and not _possible(test, space[controller]):
                where = f"{path}.{name}.when.{controller}" if controller in (p.when or {}) else f"{path}.{name}"
                errors.append(f"{where}: never applies: {name} needs {controller} {describe(test)}, which {path}.{controller} never draws")
    cycle = _cycle({name: {c: t for c, t in conditions.get(name, {}).items() if c != name} for name in [*space, *conditions]})
    if cycle:  # a setting that names itself is reported above
        errors.append(f"{path}.{cycle[0]}.when: settings that depend on each other in a circle: {' -> '.join(cycle)}")
    return errors


_SYMBOLS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "in": "in"}


def describe(test: Any) -> str:
    """A test in words: `{gt: 0}` -> `> 0`."""
    return " and ".join(f"{_SYMBOLS[op]} {operand}" for op, operand in _tests(test).items())
