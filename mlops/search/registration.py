"""Where a sweep's winner becomes a registered model version: its adapter logged as a servable model, registered with
its lineage, and judged by the policy's `after_sweep` gate (staging)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlops.config import ExperimentConfig
from mlops.errors import GateFailed
from mlops.registry import lineage_tags, promote_if_gates_pass, register_version
from mlops.serving import log_adapter_model
from mlops.tracking import ADAPTER_ARTIFACT, OPTUNA_TRIAL_TAG, POLICY_TAG, REGISTERED_VERSION_TAG, SOURCE_RUN_TAG, SWEEP_RUN_TAG

if TYPE_CHECKING:
    from mlops.registry import GateReport, PromotionPolicy


def register_and_gate(
    config: ExperimentConfig, policy: PromotionPolicy, best_run_id: str, trial_number: int, parent_run_id: str, scratch: Path
) -> tuple[str, GateReport | None, GateFailed | None]:
    """Log the best trial's adapter as a servable model, register it with its lineage, and apply the gate of
    the policy's `after_sweep` alias (staging).

    Tags go on the active run; a gate failure is returned (nothing moved), not raised.
    """
    import mlflow

    adapter_dir = scratch / f"trial-{trial_number}"
    if not adapter_dir.is_dir():  # best trial ran in an earlier session of a resumed study
        adapter_dir = Path(
            mlflow.artifacts.download_artifacts(run_id=best_run_id, artifact_path=ADAPTER_ARTIFACT, dst_path=str(scratch / "best"))
        )
    with mlflow.start_run(run_id=best_run_id, nested=True):
        info = log_adapter_model(adapter_dir)
    client = mlflow.MlflowClient()
    tags = {SOURCE_RUN_TAG: best_run_id, SWEEP_RUN_TAG: parent_run_id, OPTUNA_TRIAL_TAG: str(trial_number), POLICY_TAG: policy.source_file}
    tags |= lineage_tags(client, best_run_id, parent_run_id)
    version = register_version(client, config.registry.model_name, info.model_uri, best_run_id, tags)
    mlflow.set_tag(REGISTERED_VERSION_TAG, f"{version.name}/{version.version}")
    try:
        report = promote_if_gates_pass(client, policy, version, policy.after_sweep)
    except GateFailed as failed:
        mlflow.set_tag("promotion", f"rejected: {failed}"[:4000])
        return version.version, None, failed
    moved = f"v{version.version} awaiting approval" if report.awaiting_approval else f"-> v{version.version}"
    mlflow.set_tag("promotion", f"{policy.after_sweep} {moved}")
    return version.version, report, None
