"""What a command prints besides its own display: the toolkit's log lines at INFO through `logging`, and the libraries'
own streams (Trainer's per-step dicts and bars, MLflow's and Optuna's INFO lines, download bars) off unless verbose.

Set once by the CLI (`--verbose`, MLproject `verbose`) before the heavy libraries load; library code asks `verbose()`.
Imports nothing heavy: libraries read the environment variables set here when they load. Also the one plain-text table
formatter (`text_table`), for the tables commands print.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Literal, TextIO

_state = {"verbose": False}

# Read by each library when it loads; a value the user exported wins.
_QUIET_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "warning",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # also transformers' own bars: "Loading weights", "Writing model shards"
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

# Library log records checked to be harmless, and why, hidden unless verbose.
_HARMLESS_LOGGERS = {
    # bitsandbytes logs at import, on CPUs with AVX512-BF16, that the optional `kernels` package is missing; its own CPU
    # 4-bit kernel is used instead, and it matters only with `model.quantization`. PEFT imports bitsandbytes every run.
    "bitsandbytes.backends.cpu.ops": logging.ERROR,
}


def verbose() -> bool:
    """Whether the libraries' own output (Trainer's logs and bars, INFO lines) is wanted."""
    return _state["verbose"]


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines on whatever `sys.stderr` is when a record comes: a live display that captures stderr draws them above
    itself, and a replaced stream (a test's capture) is never written after it closed."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_output(verbose: bool = False) -> None:
    """The toolkit's logger at INFO, in plain lines on stderr; unless `verbose`, the libraries' own progress bars and
    INFO lines off."""
    _state["verbose"] = verbose
    toolkit = logging.getLogger("mlops")
    toolkit.setLevel(logging.INFO)
    if not any(isinstance(h, _CurrentStderr) for h in toolkit.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        toolkit.addHandler(handler)
    if verbose:
        return
    for name, value in _QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name, level in _HARMLESS_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def text_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: Literal["left", "right"] = "left") -> list[str]:
    """Plain-text lines of a table, columns padded to their widest cell and two spaces apart (numbers read best
    right-aligned); no trailing spaces."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(cell) for cell in column) for column in zip(*table, strict=True)]
    pad = str.ljust if align == "left" else str.rjust
    return ["  ".join(pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
