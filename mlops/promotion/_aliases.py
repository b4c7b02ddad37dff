"""Where an alias moves: register a version, record its gate report as tags, and move an alias only on a pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.errors import GateFailed, RegistryError
from mlops.promotion._gates import GateReport, decide
from mlops.promotion._policy import PromotionPolicy

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def register_version(client: MlflowClient, model_name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """A new version of `model_name` from `model_uri`, created from `run_id`."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="Registered by mlops; aliases move only through policy gates.")
    return client.create_model_version(model_name, source=model_uri, run_id=run_id, tags=tags)


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    if not version.run_id:
        raise RegistryError(f"{version.name} v{version.version} has no source run; cannot read its metrics")
    return dict(client.get_run(version.run_id).data.metrics)


def alias_holder(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def record_gate_report(client: MlflowClient, version: ModelVersion, report: GateReport) -> None:
    client.set_model_version_tag(version.name, version.version, f"gate.{report.alias}", "passed" if report.passed else "failed")
    client.set_model_version_tag(version.name, version.version, f"gate.{report.alias}.report", report.summary())


def promote_if_gates_pass(client: MlflowClient, policy: PromotionPolicy, version: ModelVersion, alias: str) -> GateReport:
    """Decide `alias` for `version`, tag the outcome, and move the alias only if every gate passed.

    Raises `GateFailed` (after tagging) when a gate fails; the alias is not touched then.
    """
    rules = policy.for_alias(alias)
    referenced = {g.not_worse_than for g in rules.gates if g.not_worse_than}
    holders: dict[str, dict[str, float] | None] = {}
    for name in referenced:
        holder = alias_holder(client, version.name, name)
        same = holder is not None and holder.version == version.version
        holders[name] = version_metrics(client, holder) if holder is not None and not same else None
    report = decide(alias, rules, version_metrics(client, version), holders)
    record_gate_report(client, version, report)
    if not report.passed:
        raise GateFailed(f"{version.name} v{version.version}: {report.summary()}; alias '{alias}' not moved")
    from mlops.promotion._audit import move_alias

    move_alias(client, version.name, alias, str(version.version), "promote", report.summary())
    return report
