"""What is derived from a loaded split once, while the split lives: its encodings, its MLflow dataset, its digest.
The runs of one process (a sweep's trials) share them; a split a run changes (augmented training data) is a new
object, derived anew."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

_Derived = TypeVar("_Derived")
_HELD: dict[tuple[int, Hashable], tuple[weakref.ref[Any], Any]] = {}


def once_per_split(split: object, key: Hashable, derive: Callable[[], _Derived]) -> _Derived:
    """`derive()`, what `key` (with the tokenizer and settings it depends on) names of `split`, computed once while
    `split` lives."""
    slot = (id(split), key)
    held = _HELD.get(slot)
    if held is not None and held[0]() is split:
        derived: _Derived = held[1]
        return derived
    derived = derive()
    _HELD[slot] = (weakref.ref(split, lambda _: _HELD.pop(slot, None)), derived)
    return derived
