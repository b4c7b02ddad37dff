"""The sweep console: what a person watching `mlops sweep` or `mlops main` sees.

The sweep only calls the hooks of `SweepConsole` (sweep started, trial started, epoch metric, trial finished, sweep
finished). `RichConsole` keeps one live display on a terminal: trials finished out of the budget with pruned, failed
and infeasible counts, the running trial with its parameters, progress and latest validation metric, the best trial so
far, elapsed time and an ETA from the finished trials' durations, the parent run and how to open it. `PlainConsole`
prints one line per event instead (CI, nohup, files): no control codes. Both end with a table of the trials, and both
read the sweep's state from one `Board` (`_board`).
"""

from mlops.search.console._base import NullConsole, SweepConsole, SweepInfo
from mlops.search.console._make import make_console
from mlops.search.console._plain import PlainConsole
from mlops.search.console._rich import RichConsole

__all__ = ["NullConsole", "PlainConsole", "RichConsole", "SweepConsole", "SweepInfo", "make_console"]
