"""A nested Optuna search: one MLflow parent run per study, and each trial becomes an MLflow child run.

Flow: check everything (config, data, model, policy, storage) before any run starts, then
join the study (the first worker's run is the parent) -> claim trials until the study's total
budget is spent -> summarise on the parent -> register + staging gate (once per study).

Any number of workers may run the same command against one PostgreSQL storage; re-running it
with the same `study_name` continues the study. See `mlops.search.study` for the coordination.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.config import ExperimentConfig
from mlops.data import dataset_lineage, log_dataset_inputs
from mlops.errors import ConfigError, GateFailed
from mlops.evaluate import baseline_metrics
from mlops.registry import policy_for
from mlops.search.checkpoints import trial_checkpoints
from mlops.search.confirm import check_confirmation, confirm_best
from mlops.search.console import NullConsole, SweepConsole, SweepInfo
from mlops.search.plan import refuse_if_nothing_fits
from mlops.search.registration import register_and_gate
from mlops.search.report import describe_sweep_run, log_sweep_summary
from mlops.search.seeds import adapter_run_id
from mlops.search.selection import objective_values, search_params, select
from mlops.search.space import make_pruner, make_sampler, never_drawn, trial_budget
from mlops.search.study import FINALIZED_ATTR, PARENT_ATTR, REGISTERED_ATTR, WINNER_ATTR, SharedStudy, open_shared_study
from mlops.search.trial import SweepLink, run_trial_as_child_run
from mlops.search.worker import collecting_only_trial_objects, for_trials
from mlops.tracking import (
    ENTRY_POINT_TAG,
    RETRIED_BY_TAG,
    ROLE_TAG,
    SWEEP_PARENT_RUN_TAG,
    TRIAL_RUN_ATTR,
    TRIAL_WORKER_RUN_ATTR,
    check_tracking_server,
    default_system_metrics_interval,
    ended,
    entry_run,
    log_environment,
    log_params_effective,
    server_gone_error,
)
from mlops.train import Prepared, log_data_checks, prepare, release_memory

if TYPE_CHECKING:
    import optuna

    from mlops.registry import GateReport, PromotionPolicy

logger = logging.getLogger(__name__)


@dataclass
class SweepOptions:
    storage: str | None = None  # default: optuna.db beside the SQLite tracking database
    study_name: str | None = None  # default: a new study, <config name>-<random suffix>
    promote: bool = True
    nested: bool = False  # run as a child of the active run (a stage of `main`)
    run_name: str | None = None  # default: sweep-<config name>
    console: SweepConsole | None = None  # what a person watching sees; default: nothing


@dataclass
class SweepResult:
    parent_run_id: str
    study_name: str
    best_trial: int  # the trial `search.select` chose
    best_value: float  # its value of the first objective
    best_run_id: str  # the run holding the best trial's adapter (with several seeds per trial, its first seed's run)
    registered_version: str | None
    gate_report: GateReport | None
    best_params: dict[str, Any] = field(default_factory=dict)
    worker_run_id: str = ""
    trials_run: int = 0  # by this worker
    finalized: bool = True  # False when another worker wrote the final summary
    best_values: dict[str, float] = field(default_factory=dict)  # its value of each objective
    selected: optuna.trial.FrozenTrial | None = None  # the chosen trial (the stages of `main` choose among theirs)


def default_storage() -> str:
    """`sqlite:///<dir of mlflow.db>/optuna.db` when tracking to SQLite, else `./optuna.db`."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    folder = Path.cwd()
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).resolve().parent
    return f"sqlite:///{folder / 'optuna.db'}"


def open_study(config: ExperimentConfig, storage: str | None, study_name: str) -> SharedStudy:
    """Open the study and check that a resumed one still has its parent run in this tracking store."""
    import mlflow

    shared = open_shared_study(
        storage or default_storage(),
        study_name,
        directions=[o.sense for o in config.search.objective_list()],
        heartbeat_interval=config.search.heartbeat_interval,
    )
    parent = shared.study.user_attrs.get(PARENT_ATTR)
    if parent is not None:
        try:
            mlflow.MlflowClient().get_run(parent)
        except mlflow.exceptions.MlflowException:
            shared.close()
            raise ConfigError(
                f"study_name: study '{study_name}' belongs to MLflow run {parent}, which tracking store "
                f"{mlflow.get_tracking_uri()} does not have; pick a new study_name"
            ) from None
    return shared


def _close_orphaned_runs(shared: SharedStudy, failed: list[optuna.trial.FrozenTrial], link: SweepLink) -> None:
    """End the MLflow runs of trials whose worker died: FAILED, with the trial that retries them."""
    import mlflow

    client = mlflow.MlflowClient()
    for trial in failed:
        shared.mark_closed(trial.number)
        retry = shared.retry_of(trial.number)
        for run_id, what in ((trial.user_attrs.get(TRIAL_RUN_ATTR), "trial"), (trial.user_attrs.get(TRIAL_WORKER_RUN_ATTR), "worker")):
            if not run_id or run_id in (link.parent_run_id, link.worker_run_id):
                continue
            run = client.get_run(run_id)
            if run.info.status != "RUNNING":
                continue
            client.set_tag(run_id, "error", f"worker lost: trial {trial.number} stopped sending heartbeats; Optuna marked it FAIL")
            if what == "trial":
                client.set_tag(run_id, RETRIED_BY_TAG, str(retry) if retry is not None else "none (retry limit reached)")
            client.set_terminated(run_id, "FAILED")
            logger.warning("trial %d lost its worker; its %s run %s is now FAILED (retried by trial %s)", trial.number, what, run_id, retry)


def _finished(link: SweepLink, shared: SharedStudy, trial: optuna.trial.FrozenTrial) -> None:
    """Tell the console `trial` ended, with the study's trials: what other workers finished meanwhile counts too."""
    link.console.trial_finished(trial, shared.study.get_trials(deepcopy=False))


def _run_one(
    shared: SharedStudy, trial: optuna.Trial, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink
) -> None:
    """Run one claimed trial and tell Optuna its outcome; an exception fails this trial only."""
    import optuna

    states = optuna.trial.TrialState
    with shared.heartbeat(trial):
        try:
            values = run_trial_as_child_run(trial, config, prepared, scratch, link, shared.retried_trial(trial.number))
        except optuna.TrialPruned as pruned:
            _finished(link, shared, shared.study.tell(trial, state=states.PRUNED))
            logger.debug("trial %d pruned: %s", trial.number, str(pruned))  # a kept record keeps no frames
        except Exception as exc:
            gone = server_gone_error(exc)  # the tracking server went away: every further trial would fail the same way,
            reason = gone or exc
            trial.set_user_attr("fail_reason", f"{type(reason).__name__}: {reason}"[:1000])
            failed = shared.study.tell(trial, state=states.FAIL)
            if gone is exc:  # so stop and leave the budget for a resume
                raise
            if gone is not None:
                raise gone from exc
            _finished(link, shared, failed)
            logger.debug("trial %d failed: %s: %s", trial.number, type(exc).__name__, str(exc))  # a kept record keeps no frames
        except KeyboardInterrupt:
            shared.study.tell(trial, state=states.FAIL)
            raise
        else:
            frozen = shared.study.tell(trial, values)
            _finished(link, shared, frozen)
            logger.debug(
                "trial %d %s: %s", trial.number, frozen.state.name.lower(), objective_values(frozen, config.search.objective_list())
            )


def _work(shared: SharedStudy, config: ExperimentConfig, prepared: Prepared, scratch: Path, link: SweepLink) -> int:
    """Claim and run trials until the study's total budget is spent and no other worker is mid-trial.

    While waiting for other workers, stale trials (dead workers) are failed and retried.
    """

    started, ran = time.monotonic(), 0
    budget = trial_budget(config.search)
    timeout = config.search.timeout
    poll = max(0.5, min(5.0, config.search.heartbeat_interval / 2))
    while timeout is None or time.monotonic() - started < timeout:
        trial = shared.claim(budget)
        if trial is not None:
            _run_one(shared, trial, config, prepared, scratch, link)
            release_memory()  # whatever the outcome (and with its frames gone), the next trial starts from the baseline
            ran += 1
            continue
        if not shared.unfinished():
            break
        _close_orphaned_runs(shared, shared.fail_stale(), link)
        time.sleep(poll)
    return ran


@contextlib.contextmanager
def _on_parent(link: SweepLink) -> Iterator[None]:
    """Make the parent run the active run: it is ours, or reopened (and ended) for the summary."""
    import mlflow

    if link.parent_run_id == link.worker_run_id:
        yield
        return
    with ended(mlflow.start_run(run_id=link.parent_run_id, nested=True)):
        yield


def _finalize(
    shared: SharedStudy, config: ExperimentConfig, policy: PromotionPolicy | None, prepared: Prepared, scratch: Path, link: SweepLink
) -> tuple[optuna.trial.FrozenTrial | None, str | None, GateReport | None, GateFailed | None]:
    """Summarise the study on the parent run, confirm its best trials (`search.confirm_top_k`) and register the
    winner, once per outcome.

    Under the study lock, so with several workers the last one to finish writes the final
    summary and a best trial is registered only once.
    """
    with shared.lock():
        finished = sum(t.state.is_finished() for t in shared.counted_trials())
        if shared.study.user_attrs.get(FINALIZED_ATTR) == finished:
            return None, None, None, None
        version, report, failed = None, None, None
        with _on_parent(link):
            selection = log_sweep_summary(shared.study, config.search)
            if config.search.confirm_top_k:
                selection = confirm_best(shared.study, config, prepared, scratch, link)
            best = selection.trial
            if policy is not None and shared.study.user_attrs.get(REGISTERED_ATTR) != best.number:
                version, report, failed = register_and_gate(config, policy, adapter_run_id(best), best.number, link.parent_run_id, scratch)
                shared.study.set_user_attr(REGISTERED_ATTR, best.number)
            describe_sweep_run(shared.study, config.search, selection, (config.registry.model_name, version) if version else None)
            shared.study.set_user_attr(WINNER_ATTR, best.number)
        shared.study.set_user_attr(FINALIZED_ATTR, finished)
    return best, version, report, failed


def _log_worker_start(shared: SharedStudy, config: ExperimentConfig, prepared: Prepared, link: SweepLink, seed: int) -> None:
    import mlflow

    is_parent = link.parent_run_id == link.worker_run_id
    if not is_parent:
        mlflow.set_tags({ROLE_TAG: "sweep-worker", SWEEP_PARENT_RUN_TAG: link.parent_run_id})
    mlflow.set_tags({"optuna.study_name": shared.study.study_name, "optuna.storage": shared.redacted})
    log_params_effective(
        {
            "config": config.name,
            "task": config.task,
            "model_source": config.model.source,
            "sampler": config.search.sampler,
            "pruner": config.search.pruner,
            "n_trials": config.search.n_trials,
            "seeds_per_trial": config.search.seeds_per_trial,
            "confirm_top_k": config.search.confirm_top_k,
            "seed": config.training.seed,
            "sampler_seed": seed,
            "metric": config.search.metric,
            "study_name": shared.study.study_name,
            "storage": shared.redacted,
            **search_params(config.search),
        }
    )
    mlflow.log_artifact(config.source_file, "config")
    log_environment()
    if is_parent:
        mlflow.set_tags(dataset_lineage(config.dataset))  # data from an `augment` run names that run
        log_dataset_inputs(prepared.data)
        log_data_checks(prepared)
        mlflow.log_metrics(baseline_metrics(config.task, prepared.data, config.training.seed))


def run_sweep(config: ExperimentConfig, options: SweepOptions, prepared: Prepared | None = None) -> SweepResult:
    """Join (or start) the study, run trials until its budget is spent, then summarise and gate.

    `prepared`: the inputs already loaded and checked by the caller (the stages of `main` share one).
    """
    import mlflow

    check_confirmation(config.search)
    budget = trial_budget(config.search)
    if budget < config.search.n_trials:
        logger.info("the grid has %d points: running %d trials, not %d", budget, budget, config.search.n_trials)
    if not options.nested:  # before the study is opened: a resumed study looks its parent run up there
        check_tracking_server()
    policy = policy_for(config) if options.promote else None
    prepared = for_trials(prepared or prepare(config))
    refuse_if_nothing_fits(config)  # else every trial would be pruned before it starts
    default_system_metrics_interval()  # trial runs log system metrics
    for reason in never_drawn(config.search.space, config.tunable_values()):
        logger.warning(reason)
    study_name = options.study_name or f"{config.name}-{uuid.uuid4().hex[:8]}"
    shared = open_study(config, options.storage, study_name)
    run_name = options.run_name or f"sweep-{config.name}"
    console = options.console or NullConsole()
    failed: GateFailed | None = None
    try:
        with (
            entry_run(config.mlflow_experiment, run_name, tags={ENTRY_POINT_TAG: "sweep"}, nested=options.nested) as run,
            tempfile.TemporaryDirectory(prefix="mlops-sweep-") as tmp,
        ):
            parent_id, worker = shared.join(run.info.run_id)
            experiment_id = mlflow.MlflowClient().get_run(parent_id).info.experiment_id
            checkpoints = trial_checkpoints(config.search, shared.url, study_name, Path(tmp))
            link = SweepLink(parent_id, run.info.run_id, experiment_id, console, checkpoints)
            seed = config.training.seed + worker  # workers (and resumed sweeps) draw different random points
            epochs = config.search.space.get("epochs")
            max_epochs = int(epochs.high) if epochs is not None and epochs.high is not None else config.training.epochs
            resource = max_epochs * config.search.seeds_per_trial  # a trial's epochs, over all its seeds
            shared.use_sampler(make_sampler(config.search.sampler, config.search, seed), make_pruner(config.search.pruner, resource))
            _log_worker_start(shared, config, prepared, link, seed)
            scratch = Path(tmp)
            _close_orphaned_runs(shared, shared.fail_stale() + _failed_with_running_runs(shared), link)
            console.sweep_started(_sweep_info(config, run_name, shared, link), shared.study.get_trials(deepcopy=False))
            with collecting_only_trial_objects():
                ran = _work(shared, config, prepared, scratch, link)
            mlflow.log_metric("trials_run_by_worker", ran)
            best, version, report, failed = _finalize(shared, config, policy, prepared, scratch, link)
            finalized = best is not None
            if best is None:  # another worker wrote the final summary, and chose the winner (confirmed, if so)
                best = _winner(shared, config)
            console.sweep_finished(shared.study.get_trials(deepcopy=False))
    finally:
        console.close()
        shared.close()
    if failed is not None:
        raise failed
    return SweepResult(
        parent_id,
        study_name,
        best.number,
        float((best.values or [0.0])[0]),
        adapter_run_id(best),
        version,
        report,
        best_params=dict(best.params),
        worker_run_id=link.worker_run_id,
        trials_run=ran,
        finalized=finalized,
        best_values=objective_values(best, config.search.objective_list()),
        selected=best,
    )


def _winner(shared: SharedStudy, config: ExperimentConfig) -> optuna.trial.FrozenTrial:
    """The winner the final summary chose, which another worker wrote (after confirming the best trials, if so)."""
    number = shared.study.user_attrs.get(WINNER_ATTR)
    if number is None:  # a study finalized by an earlier release
        return select(shared.study.trials, config.search).trial
    return shared.study.get_trials(deepcopy=False)[int(number)]


def _sweep_info(config: ExperimentConfig, run_name: str, shared: SharedStudy, link: SweepLink) -> SweepInfo:
    import mlflow

    search = config.search
    name, budget = shared.study.study_name, trial_budget(search)
    return SweepInfo(
        run_name,
        name,
        budget,
        search.metric,
        search.direction,
        link.parent_run_id,
        link.experiment_id,
        mlflow.get_tracking_uri(),
        search.gap_threshold,
        search,
    )


def _failed_with_running_runs(shared: SharedStudy) -> list[optuna.trial.FrozenTrial]:
    """FAIL trials whose MLflow run is still RUNNING: their worker died before it could end it."""
    import mlflow
    import optuna

    client = mlflow.MlflowClient()
    out = []
    for trial in shared.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = trial.user_attrs.get(TRIAL_RUN_ATTR)
        if run_id and client.get_run(run_id).info.status == "RUNNING":
            out.append(trial)
    return out
