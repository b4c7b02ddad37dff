"""Progress of long steps (training, WordNet loading, GGUF conversion, batched generation, the bootstrap), in one style.

A step reports through `step`/`progress`; where it goes is decided here, not by the step: to the live sweep display
when one is active (`reporting_to`), else to a transient `rich` bar when stderr is a terminal (steps inside steps share
it), else nowhere (logs and files get no bars). Imports nothing of the toolkit, so every layer may use it; `rich` loads
only for a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# Called with (what, done, total) whenever a step advances; total None when unknown.
ProgressSink = Callable[[str, int, "int | None"], None]

_sinks: list[ProgressSink] = []
_bars: list[Any] = []  # the one rich Progress on stderr while any step draws there


class Step:
    """A long step in progress: `update` says how far it is; updates after the step ended are ignored."""

    def __init__(self, description: str, total: int | None = None, sink: ProgressSink | None = None) -> None:
        self.description, self.total, self.done = description, total, 0
        self.sink = sink
        self.open = True

    def update(self, done: int, total: int | None = None, description: str | None = None) -> None:
        self.done = done
        self.total = total if total is not None else self.total
        self.description = description or self.description
        if self.open and self.sink is not None:
            self.sink(self.description, self.done, self.total)


@contextmanager
def reporting_to(sink: ProgressSink) -> Iterator[None]:
    """Send every step's progress to `sink` (a live display) while the block runs, instead of drawing bars."""
    _sinks.append(sink)
    try:
        yield
    finally:
        _sinks.remove(sink)


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Step]:
    """A long step: to the active display, a transient bar on a terminal, or nowhere."""
    if _sinks:
        current = Step(description, total, _sinks[-1])
    elif _stderr_is_terminal():
        current = Step(description, total, _bar_sink(description, total))
    else:
        current = Step(description, total)
    try:
        current.update(0)
        yield current
    finally:
        current.open = False
        if current.sink is not None and not _sinks:
            _end_bar(current.sink)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """`items`, reporting each one done; `total` defaults to `len(items)` where it has one."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    with step(description, total) as current:
        for done, item in enumerate(items, 1):
            yield item
            current.update(done)


def _bar_sink(description: str, total: int | None) -> ProgressSink:
    """A row on the shared stderr bar, which starts with the first step and stops with the last."""
    if not _bars:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        bars = Progress(*columns, console=Console(stderr=True), transient=True)
        bars.start()
        _bars.append(bars)
    bars = _bars[0]
    task_id = bars.add_task(description, total=total)

    def sink(what: str, done: int, total: int | None) -> None:
        bars.update(task_id, completed=done, total=total, description=what)

    sink.task_id = task_id  # type: ignore[attr-defined]
    return sink


def _end_bar(sink: ProgressSink) -> None:
    if not _bars or not hasattr(sink, "task_id"):
        return
    bars = _bars[0]
    bars.remove_task(sink.task_id)
    if not bars.tasks:
        bars.stop()
        _bars.clear()


def _stderr_is_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
