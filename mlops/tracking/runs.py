"""Start the run an entry point logs to, correctly both under `mlflow run` and from the plain CLI; child runs (a trial,
a seed, a confirmation); how runs end; how often runs that log system metrics sample them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.tracking.links import describe_experiment
from mlops.tracking.names import PARENT_RUN_TAG
from mlops.tracking.server import abandon_active_run, check_tracking_server, server_gone_error

if TYPE_CHECKING:
    from mlflow.entities import Run

# Seconds between the system-metrics samples of a run that logs them, unless MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL
# is set: MLflow's own 10 s leaves a short trial without a single point (it logs only whole intervals).
SYSTEM_METRICS_INTERVAL = 5.0


ASYNC_BUFFERING_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"


def buffer_async_logging(seconds: int = 1) -> None:
    """Have MLflow's async logging thread send what is queued every `seconds`, unless the user chose otherwise.

    Without a buffering interval the thread blocks on its empty queue for up to a second at a time, and each flush
    and each `end_run` (a run's end shuts the thread down) waits for it: about 1.5 s per run, every trial of a
    sweep. With one, the thread waits on its stop event, which a flush sets, so a flush returns at once.
    """
    os.environ.setdefault(ASYNC_BUFFERING_ENV, str(seconds))


@contextmanager
def entry_run(experiment: str, run_name: str, tags: dict[str, str] | None = None, nested: bool = False) -> Iterator[Run]:
    """The run an entry point logs to; it ends FAILED (or KILLED on Ctrl-C) if the body raises.

    Under `mlflow run`, MLFLOW_RUN_ID names the project run: it is taken over (and renamed),
    never replaced, and the experiment is the one `mlflow run` chose. `nested` makes it a
    child of the active run instead (a stage of the `main` pipeline).
    """
    import mlflow

    if nested:
        with ended(mlflow.start_run(run_name=run_name, tags=tags, nested=True)) as run:
            yield run
        return
    check_tracking_server()  # an unreachable server or refused credentials: one line now, not retries later
    if not os.environ.get("MLFLOW_RUN_ID"):
        # When another worker creates the experiment at the same moment, MLflow's set_experiment returns it without
        # making it the active one (its runs and their children would go to Default); by id, it becomes active.
        mlflow.set_experiment(experiment_id=mlflow.set_experiment(experiment).experiment_id)
    with ended(mlflow.start_run(run_name=run_name, tags=tags)) as run:
        describe_experiment(run.info.experiment_id)
        yield run


@contextmanager
def ended(run: Run, killed_by: tuple[type[BaseException], ...] = ()) -> Iterator[Run]:
    """End `run` (the active run) FINISHED, FAILED with an `error` tag, or KILLED.

    KILLED is for Ctrl-C and for the exception types in `killed_by` (a pruned trial): the
    run was stopped on purpose, so it gets no `error` tag. If the tracking server went away, the
    run is dropped locally and a `TrackingServerError` raised: there is nothing to end it on.
    """
    import mlflow

    stopped: tuple[type[BaseException], ...] = (KeyboardInterrupt, *killed_by)
    try:
        yield run
    except stopped:
        mlflow.end_run("KILLED")
        raise
    except BaseException as exc:
        gone = server_gone_error(exc)
        if gone is not None:
            abandon_active_run()
            if gone is exc:
                raise
            raise gone from exc
        mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:4000])
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")


@dataclass(frozen=True)
class ChildRun:
    """A child run of another run, created before it starts so that its id can be recorded first (on an Optuna trial,
    say), then logged to nested and ended like any run.

    Created by id under the parent (not as a child of whichever run is active), so a second worker or a resumed sweep
    adds its children to the same parent.
    """

    run_id: str

    @classmethod
    def create(cls, experiment_id: str, parent_run_id: str, name: str, tags: Mapping[str, str] | None = None) -> ChildRun:
        import mlflow

        created = mlflow.MlflowClient().create_run(experiment_id, tags={PARENT_RUN_TAG: parent_run_id, **(tags or {})}, run_name=name)
        return cls(created.info.run_id)

    @contextmanager
    def started(self, killed_by: tuple[type[BaseException], ...] = (), log_system_metrics: bool | None = None) -> Iterator[Run]:
        """The child as the active run; it ends as `ended` ends it (KILLED for `killed_by`). `log_system_metrics`: None
        leaves it to MLflow's environment variable."""
        import mlflow

        with ended(mlflow.start_run(run_id=self.run_id, nested=True, log_system_metrics=log_system_metrics), killed_by=killed_by) as run:
            yield run


@contextmanager
def child_run(
    experiment_id: str,
    parent_run_id: str,
    name: str,
    tags: Mapping[str, str] | None = None,
    killed_by: tuple[type[BaseException], ...] = (),
) -> Iterator[Run]:
    """Create a child run of `parent_run_id` and make it the active run until the block ends (then ended FINISHED,
    FAILED, or KILLED for `killed_by`)."""
    with ChildRun.create(experiment_id, parent_run_id, name, tags).started(killed_by) as run:
        yield run


def log_params_effective(params: dict[str, object]) -> None:
    """Log params to the active run without clashing with what `mlflow run` already logged.

    Under `mlflow run` the project parameters are logged first, unset ones as "" (MLflow
    params are immutable). A key already present with another value is logged as
    `<key>_effective`, so the run shows both what was passed and what was used.
    """
    import mlflow

    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params if run else {}
    out: dict[str, object] = {}
    for key, value in params.items():
        if key not in existing:
            out[key] = value
        elif existing[key] != str(value):
            out[f"{key}_effective"] = value
    if out:
        mlflow.log_params(out)


def default_system_metrics_interval() -> None:
    """Sample system metrics every `SYSTEM_METRICS_INTERVAL` seconds unless the environment already chose."""
    import mlflow

    if not os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"):
        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL)
