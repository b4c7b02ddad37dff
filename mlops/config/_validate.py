"""Build typed dataclasses from plain YAML data, collecting every problem with its key path."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


def _nearest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else f" (valid keys: {', '.join(sorted(valid))})"


def choice_error(path: str, value: Any, choices: tuple[Any, ...]) -> str:
    """A value outside `choices`, with the nearest choice when one is close (as for a misspelt key)."""
    match = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    hint = f" (did you mean '{match[0]}'?)" if match else ""
    return f"{path}: must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str, errors: list[str]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            if type(None) in get_args(tp):
                return None
            errors.append(f"{path}: must not be empty")
            return None
        if len(args) == 1:
            return _coerce(value, args[0], path, errors)
        for arg in args:  # first alternative that accepts the value wins
            trial_errors: list[str] = []
            result = _coerce(value, arg, path, trial_errors)
            if not trial_errors:
                return result
        sections = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(sections) == 1:  # a mapping meant for the one section: its own problems
            return _coerce(value, sections[0], path, errors)
        errors.append(f"{path}: expected one of {', '.join(_type_name(a) for a in args)}, got {value!r}")
        return None
    if origin is typing.Literal:
        choices = get_args(tp)
        if value not in choices:
            errors.append(choice_error(path, value, choices))
        return value
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {value!r}")
            return []
        (item_tp,) = get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {value!r}")
            return {}
        _, val_tp = get_args(tp) or (str, Any)
        return {str(k): _coerce(v, val_tp, f"{path}.{k}", errors) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path, errors)  # type: ignore[arg-type]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        errors.append(f"{path}: expected true or false, got {value!r}")
        return False
    if tp is float:
        if isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {value!r}")
            return 0.0
        try:
            return float(value)
        except (TypeError, ValueError):
            errors.append(f"{path}: expected a number, got {value!r}")
            return 0.0
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            errors.append(f"{path}: expected an integer, got {value!r}")
            return 0
        try:
            return int(value)
        except (TypeError, ValueError):
            errors.append(f"{path}: expected an integer, got {value!r}")
            return 0
    if tp is str:
        if isinstance(value, (dict, list)):
            errors.append(f"{path}: expected a string, got {value!r}")
            return ""
        return str(value)
    return value


def build(cls: type[T], data: Any, path: str, errors: list[str]) -> T:
    """Build dataclass `cls` from `data`; append problems to `errors` instead of raising.

    Unknown keys are reported with the nearest valid name, and a value outside a field's choices (a `Literal`, or
    the `choices` in its metadata: a callable giving them, with `unknown`, the message for a value outside them)
    with the nearest valid value. After the fields are built, the dataclass's own `check(path)` (if any) adds range
    and consistency problems (skipping what depends on a value already refused).
    """
    prefix = f"{path}." if path else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(f"{path or 'config'}: expected a mapping, got {data!r}")
        data = {}
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    for key in data:
        if key not in fields:
            errors.append(f"{prefix}{key}: unknown key{_nearest(str(key), list(fields))}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name, errors)
            choices = field.metadata.get("choices")
            if choices is not None and kwargs[name] not in choices():
                errors.append(field.metadata["unknown"](prefix + name, kwargs[name]))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            errors.append(f"{prefix}{name}: required key is missing")
            kwargs[name] = None
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        errors.extend(check(path))
    return obj
