"""Pick the console for where the output goes: a terminal or not."""

from __future__ import annotations

import sys
from typing import TextIO

from mlops.search.console._plain import PlainConsole
from mlops.search.console._rich import RichConsole


def make_console(verbose: bool = False, stream: TextIO | None = None) -> RichConsole | PlainConsole:
    """`RichConsole` when `stream` (stdout) is a terminal, else `PlainConsole`. Unless `verbose`, Optuna's own INFO
    lines are off: the console says what they say."""
    import optuna

    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    stream = stream or sys.stdout
    if getattr(stream, "isatty", lambda: False)():
        from rich.console import Console

        return RichConsole(Console(file=stream))
    return PlainConsole(stream)
