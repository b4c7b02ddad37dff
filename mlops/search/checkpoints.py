"""A trial's training checkpoints: where they go (a folder beside the study, a shared folder, or the trial's MLflow
run), which one the retry of a lost trial resumes from, and their removal once a trial has ended.

Layout: `<root>/trial-<n>/checkpoint-<step>/` on disk, `checkpoint/checkpoint-<step>/` among a run's artifacts.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.search.duplicates import CONFIG_KEY_ATTR
from mlops.tracking import FROM_SCRATCH_TAG, RESUMED_TAG, TRIAL_RUN_ATTR
from mlops.train import TRAINER_STATE, CheckpointPlan, checkpoint_state, checkpoint_step, last_checkpoint

if TYPE_CHECKING:
    import optuna

    from mlops.config import SearchConfig

logger = logging.getLogger(__name__)

MLFLOW = "mlflow"  # `search.checkpoint_dir` value: checkpoints go to the trial's run as artifacts
ARTIFACT_PATH = "checkpoint"
RESUMED_METRIC = "resumed_from_step"


@dataclass(frozen=True)
class TrialCheckpoints:
    """Where the trials of one study checkpoint. `root` holds a `trial-<n>` folder per trial; with `to_mlflow` it is
    local scratch, and each checkpoint is uploaded to the trial's run. With `own_parent`, root's parent is the
    `checkpoints` folder the toolkit made (not one the user named), removed too once empty."""

    root: Path
    keep: int
    keep_finished: bool
    to_mlflow: bool
    own_parent: bool = False

    def folder(self, number: int) -> Path:
        return self.root / f"trial-{number}"


@dataclass(frozen=True)
class Resume:
    """What a retry starts from: a checkpoint (its step and epoch) or, with the reason, from scratch."""

    checkpoint: Path | None = None
    step: int = 0
    epoch: int = 0
    reason: str = ""


def trial_checkpoints(search: SearchConfig, storage_url: str, study_name: str, scratch: Path) -> TrialCheckpoints | None:
    """The study's checkpoint place from `search.checkpoint_dir`: by default a `checkpoints` folder beside a SQLite
    study (else in the working directory); None when `search.keep_checkpoints` is 0."""
    if search.keep_checkpoints == 0:
        return None
    folder = study_name.replace("/", "_")
    setting, keep, keep_finished = search.checkpoint_dir, search.keep_checkpoints, search.keep_finished_checkpoints
    if setting == MLFLOW:
        return TrialCheckpoints(scratch / "checkpoints", keep, keep_finished, to_mlflow=True)
    if setting is not None:
        return TrialCheckpoints(Path(setting).expanduser().resolve() / folder, keep, keep_finished, to_mlflow=False)
    beside = Path(storage_url.split("///", 1)[1]).resolve().parent if storage_url.startswith("sqlite:///") else Path.cwd()
    return TrialCheckpoints(beside / "checkpoints" / folder, keep, keep_finished, to_mlflow=False, own_parent=True)


def plan_for(checkpoints: TrialCheckpoints, number: int, run_id: str, resume: Resume) -> CheckpointPlan:
    """Trial `number`'s checkpoints (uploaded to run `run_id` when they go to MLflow), resuming as `resume` says."""
    upload = None
    if checkpoints.to_mlflow:

        def upload(folder: Path, step: int) -> None:
            _upload(run_id, folder, checkpoints.keep)

    return CheckpointPlan(checkpoints.folder(number), checkpoints.keep, resume.checkpoint, upload)


def find_resume(checkpoints: TrialCheckpoints | None, lost: optuna.trial.FrozenTrial, config_key: str) -> Resume:
    """The last usable checkpoint of `lost`, the trial a retry replaces, if it ran the same configuration."""
    if checkpoints is None:
        return Resume(reason="checkpoints are off (search.keep_checkpoints is 0)")
    if lost.user_attrs.get(CONFIG_KEY_ATTR) != config_key:
        return Resume(reason=f"trial {lost.number} ran another configuration (the study's settings changed)")
    run_id = lost.user_attrs.get(TRIAL_RUN_ATTR)
    found = last_checkpoint(checkpoints.folder(lost.number))
    if found is None and checkpoints.to_mlflow and run_id:
        found = _download(run_id, checkpoints.root / "resume" / f"trial-{lost.number}")
    state = checkpoint_state(found) if found is not None else None
    if found is None or state is None:
        where = f"run {run_id}" if checkpoints.to_mlflow else str(checkpoints.folder(lost.number))
        return Resume(reason=f"trial {lost.number} left no complete checkpoint in {where}")
    return Resume(found, int(state["global_step"]), math.ceil(float(state.get("epoch") or 0)))


def discard(checkpoints: TrialCheckpoints | None, number: int, run_id: str, lost: optuna.trial.FrozenTrial | None = None) -> None:
    """Delete the checkpoints of trial `number` (run `run_id`), which has ended, and of the `lost` trial it replaced:
    on disk and among the runs' artifacts, unless `search.keep_finished_checkpoints`."""
    if checkpoints is None or checkpoints.keep_finished:
        return
    ended = [(number, run_id)] + ([(lost.number, str(lost.user_attrs.get(TRIAL_RUN_ATTR, "")))] if lost is not None else [])
    for trial_number, trial_run in ended:
        shutil.rmtree(checkpoints.folder(trial_number), ignore_errors=True)
        shutil.rmtree(checkpoints.root / "resume" / f"trial-{trial_number}", ignore_errors=True)
        if checkpoints.to_mlflow and trial_run:
            _delete_artifacts(trial_run, ARTIFACT_PATH)
    emptied = [checkpoints.root / "resume", checkpoints.root] + ([checkpoints.root.parent] if checkpoints.own_parent else [])
    for folder in emptied:  # once empty, the study's folder goes too, and the `checkpoints` folder the toolkit made
        with contextlib.suppress(OSError):
            folder.rmdir()


def _upload(run_id: str, folder: Path, keep: int) -> None:
    """Upload a checkpoint with its `trainer_state.json` last (what marks it complete), then drop older ones."""
    import mlflow

    client = mlflow.MlflowClient()
    target = f"{ARTIFACT_PATH}/{folder.name}"
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != TRAINER_STATE:
            inner = path.parent.relative_to(folder).as_posix()
            client.log_artifact(run_id, str(path), target if inner == "." else f"{target}/{inner}")
    client.log_artifact(run_id, str(folder / TRAINER_STATE), target)
    uploaded = sorted(_uploaded_steps(run_id), reverse=True)
    for step in uploaded[keep:]:
        _delete_artifacts(run_id, f"{ARTIFACT_PATH}/checkpoint-{step}")


def _uploaded_steps(run_id: str) -> list[int]:
    """Steps of the complete checkpoints among run `run_id`'s artifacts."""
    import mlflow

    client = mlflow.MlflowClient()
    steps = []
    for entry in client.list_artifacts(run_id, ARTIFACT_PATH):
        step = checkpoint_step(Path(entry.path).name)
        if entry.is_dir and step is not None:
            files = {Path(f.path).name for f in client.list_artifacts(run_id, entry.path)}
            if TRAINER_STATE in files:
                steps.append(step)
    return steps


def _download(run_id: str, destination: Path) -> Path | None:
    """Download the newest complete checkpoint of run `run_id`, if it has one."""
    import mlflow

    steps = _uploaded_steps(run_id)
    if not steps:
        return None
    destination.mkdir(parents=True, exist_ok=True)
    artifact = f"{ARTIFACT_PATH}/checkpoint-{max(steps)}"
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=str(destination))
    return Path(path)


def _delete_artifacts(run_id: str, path: str) -> None:
    """Delete a run's artifacts where the artifact store allows it; a store that does not keeps them (logged)."""
    import mlflow
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    run = mlflow.MlflowClient().get_run(run_id)
    try:
        get_artifact_repository(run.info.artifact_uri).delete_artifacts(path)
    except (NotImplementedError, mlflow.exceptions.MlflowException, OSError) as exc:
        logger.info("run %s keeps artifacts %s: the artifact store cannot delete them (%s)", run_id, path, exc)


def retry_tags(lost: optuna.trial.FrozenTrial | None, resume: Resume) -> dict[str, str]:
    """A retry's run tags: the step it resumed from, or why it starts from scratch."""
    if lost is None:
        return {}
    if resume.checkpoint is not None:
        return {RESUMED_TAG: str(resume.step)}
    return {FROM_SCRATCH_TAG: resume.reason}


def continue_lost_trial(trial: optuna.Trial, lost: optuna.trial.FrozenTrial, resume: Resume) -> None:
    """On the active run of `trial`, a resumed retry of `lost`: copy the lost run's curves up to the step it resumes
    from (the retry's run then holds whole curves, like an uninterrupted trial's), log that step, and report to
    Optuna what `lost` reported up to there (the pruner sees the whole curve)."""
    import mlflow

    run = mlflow.active_run()
    lost_run = lost.user_attrs.get(TRIAL_RUN_ATTR)
    if run is not None and lost_run:
        _copy_curves(str(lost_run), run.info.run_id, resume.step)
    mlflow.log_metric(RESUMED_METRIC, resume.step, step=resume.step)
    for epoch, value in sorted(lost.intermediate_values.items()):
        if epoch <= resume.epoch:
            trial.report(value, epoch)
    logger.info("trial %d resumes trial %d from step %d (%s)", trial.number, lost.number, resume.step, resume.checkpoint)


def _copy_curves(source: str, target: str, up_to_step: int) -> None:
    """Log run `source`'s metric points at steps <= `up_to_step` to run `target`, with their steps and timestamps.
    System metrics are left out (their steps count samples of a process that has gone, not training steps), and so is
    the step a lost retry itself resumed from."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        names = [n for n in client.get_run(source).data.metrics if not n.startswith("system/") and n != RESUMED_METRIC]
        points = [p for name in names for p in client.get_metric_history(source, name) if p.step <= up_to_step]
    except MlflowException as exc:  # the lost run was deleted: the retry's curves start at the resumed step
        logger.warning("could not copy the curves of run %s to its retry: %s", source, exc)
        return
    for start in range(0, len(points), 1000):  # MLflow's log_batch takes at most 1000 metrics a call
        client.log_batch(target, metrics=points[start : start + 1000], synchronous=True)
