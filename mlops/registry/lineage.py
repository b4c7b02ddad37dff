"""Lineage tags for a registered version: everything needed to trace it back and to re-run its trial."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mlops.tracking import AUGMENT_RUN_TAG, BASE_MODEL_RUN_TAG, ENVIRONMENT_ARTIFACT, PARENT_RUN_TAG, RESOLVED_CONFIG_ARTIFACT

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Run tags naming upstream runs, copied to the version as they are.
_UPSTREAM_TAGS = (AUGMENT_RUN_TAG, BASE_MODEL_RUN_TAG)


def _git(client: MlflowClient, run_id: str, tags: dict[str, str]) -> str:
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="mlops-env-") as tmp:
        try:
            path = client.download_artifacts(run_id, ENVIRONMENT_ARTIFACT, tmp)
            with open(path, encoding="utf-8") as f:
                git = json.load(f).get("git") or {}
        except (MlflowException, OSError, ValueError):
            git = {}
    commit = git.get("commit") or tags.get("mlflow.source.git.commit")
    if not commit:
        return "unknown"
    return f"{commit} (dirty)" if git.get("dirty") else str(commit)


def lineage_tags(client: MlflowClient, trial_run_id: str, sweep_run_id: str | None = None) -> dict[str, str]:
    """Tags leading from a version back to its trial run, sweep, datasets (by digest), environment, code and config."""
    run = client.get_run(trial_run_id)
    tags = {
        "lineage.trial_run_id": trial_run_id,
        "lineage.environment": f"runs:/{trial_run_id}/{ENVIRONMENT_ARTIFACT}",
        "lineage.resolved_config": f"runs:/{trial_run_id}/{RESOLVED_CONFIG_ARTIFACT}",
        "lineage.git_commit": _git(client, trial_run_id, run.data.tags),
        "lineage.seed": run.data.params.get("seed", "unknown"),
    }
    parent = sweep_run_id or run.data.tags.get(PARENT_RUN_TAG)
    if parent:
        tags["lineage.sweep_run_id"] = parent
    for item in run.inputs.dataset_inputs if run.inputs else []:
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), item.dataset.name)
        tags[f"lineage.dataset.{context}"] = json.dumps({"name": item.dataset.name, "digest": item.dataset.digest})
    tags |= {key: run.data.tags[key] for key in _UPSTREAM_TAGS if key in run.data.tags}
    return tags
