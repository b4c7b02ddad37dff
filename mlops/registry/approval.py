"""A named person in the loop: an alias whose policy says `approval: required` moves only when someone approves.

A version that passes every gate of such an alias is tagged `mlops.approval.<alias>=awaiting` (with the gate report
and the holder it was decided against in `mlops.approval.<alias>.record`), and an `awaiting` event joins the model's
audit trail; the alias does not move. `approve` moves it through the usual audited path, and records who approved
(the tracking server's username where it has auth, else the OS user), when, and their note.
"""

from __future__ import annotations

import getpass
import json
import os
from typing import TYPE_CHECKING, Any

from mlops.errors import RegistryError
from mlops.registry.aliases import ANY_HOLDER, AliasMove, move_alias, record_event
from mlops.registry.ledger import now

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops.registry.gates import GateReport

APPROVAL_PREFIX = "mlops.approval."
AWAITING, APPROVED = "awaiting", "approved"


def _status_tag(alias: str) -> str:
    return f"{APPROVAL_PREFIX}{alias}"


def _record_tag(alias: str) -> str:
    return f"{APPROVAL_PREFIX}{alias}.record"


def approver() -> str:
    """Who approves: the tracking server's username where the server has auth, else the OS user."""
    import mlflow

    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user and mlflow.get_tracking_uri().startswith(("http://", "https://")):
        return user
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def request_approval(client: MlflowClient, version: ModelVersion, report: GateReport, decided_against: str | None) -> None:
    """Record that `version` passed every gate of `report.alias` and waits for a person to approve the move."""
    alias = report.alias
    record = {"requested_at": now(), "gate_report": report.summary()[:2000], "decided_against": decided_against}
    client.set_model_version_tag(version.name, str(version.version), _record_tag(alias), json.dumps(record))
    client.set_model_version_tag(version.name, str(version.version), _status_tag(alias), AWAITING)
    record_event(client, version, alias, "awaiting", f"passed every gate; awaiting approval: {report.summary()}")


def _approvals(version: ModelVersion) -> dict[str, str]:
    """alias -> status (awaiting, approved) of one version."""
    return {
        key.removeprefix(APPROVAL_PREFIX): value
        for key, value in version.tags.items()
        if key.startswith(APPROVAL_PREFIX) and not key.endswith(".record")
    }


def pending(client: MlflowClient, model_name: str | None = None) -> list[dict[str, Any]]:
    """The versions waiting for approval (of one model, or of every model), oldest request first."""
    query = f"name='{model_name}'" if model_name else ""
    waiting = []
    for version in client.search_model_versions(query):
        for alias, status in _approvals(version).items():
            if status == AWAITING:
                record = json.loads(version.tags.get(_record_tag(alias), "{}"))
                waiting.append({"model": version.name, "version": str(version.version), "alias": alias, **record})
    return sorted(waiting, key=lambda w: (w.get("requested_at", ""), w["model"], int(w["version"])))


def approve(client: MlflowClient, version: ModelVersion, alias: str | None, note: str) -> dict[str, Any]:
    """Move the alias `version` awaits to it, recording the approver; refuses a version that is not awaiting it."""
    name, number = version.name, str(version.version)
    approvals = _approvals(version)
    if alias is None:
        awaiting = [a for a, status in approvals.items() if status == AWAITING]
        if len(awaiting) > 1:
            raise RegistryError(f"{name} v{number} awaits approval for {', '.join(awaiting)}; pass --alias")
        alias = awaiting[0] if awaiting else next(iter(approvals), None)
        if alias is None:
            raise RegistryError(f"{name} v{number} awaits no approval: it did not pass the gates of an alias that requires one")
    status = approvals.get(alias)
    record = json.loads(version.tags.get(_record_tag(alias), "{}"))
    if status == APPROVED:
        raise RegistryError(f"{name} v{number}: '{alias}' already approved by {record.get('approved_by')} at {record.get('approved_at')}")
    if status != AWAITING:
        raise RegistryError(f"{name} v{number} is not awaiting approval for '{alias}': it did not pass that alias's gates")
    who = approver()
    why = f"approved by {who}: {note}; {record.get('gate_report', '')}"
    decided_against = record.get("decided_against", ANY_HOLDER)
    event = move_alias(client, AliasMove(name, alias, number, "approve", why, expect_from=decided_against))
    record |= {"approved_by": who, "approved_at": event["when"], "note": note}
    client.set_model_version_tag(name, number, _record_tag(alias), json.dumps(record))
    client.set_model_version_tag(name, number, _status_tag(alias), APPROVED)
    return event
