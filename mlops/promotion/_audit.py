"""The audit trail of alias moves: one registered-model tag per move, queryable later.

MLflow keeps only the current alias holder (mlflow #2169); every move made through the toolkit,
promotion or rollback, appends an event `mlops.audit.<seq>` to the registered model: who (user@host),
when (UTC), which alias, from which version to which, why (the gate report), and the source run.
"""

from __future__ import annotations

import datetime
import getpass
import json
import socket
from typing import TYPE_CHECKING, Any

from mlops.errors import RegistryError

if TYPE_CHECKING:
    from mlflow import MlflowClient

AUDIT_PREFIX = "mlops.audit."


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def history(client: MlflowClient, model_name: str, alias: str | None = None) -> list[dict[str, Any]]:
    """Every recorded alias move of `model_name`, oldest first (optionally for one alias)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(model_name).tags
    except MlflowException as exc:
        raise RegistryError(f"{model_name}: {str(exc).splitlines()[0]}") from None
    events = [json.loads(v) for k, v in tags.items() if k.startswith(AUDIT_PREFIX)]
    events.sort(key=lambda e: int(e["seq"]))
    return [e for e in events if alias is None or e["alias"] == alias]


def move_alias(client: MlflowClient, model_name: str, alias: str, version: str, action: str, why: str) -> dict[str, Any]:
    """Point `alias` at `version` and append the move to the audit trail; returns the event."""
    from mlops.promotion._aliases import alias_holder

    holder = alias_holder(client, model_name, alias)
    target = client.get_model_version(model_name, version)
    client.set_registered_model_alias(model_name, alias, version)
    event = {
        "seq": len(history(client, model_name)) + 1,
        "action": action,
        "alias": alias,
        "from_version": str(holder.version) if holder is not None else None,
        "to_version": str(version),
        "who": _who(),
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "why": why[:2000],
        "source_run_id": target.run_id,
    }
    client.set_registered_model_tag(model_name, f"{AUDIT_PREFIX}{event['seq']:06d}", json.dumps(event))
    return event


def rollback(client: MlflowClient, model_name: str, alias: str) -> dict[str, Any]:
    """Move `alias` back to the version that held it before the current holder, through the audit path."""
    from mlops.promotion._aliases import alias_holder

    holder = alias_holder(client, model_name, alias)
    if holder is None:
        raise RegistryError(f"{model_name}: no version holds '{alias}'; nothing to roll back")
    moves = [e for e in history(client, model_name, alias) if e["to_version"] == str(holder.version)]
    previous = moves[-1]["from_version"] if moves else None
    if previous is None:
        raise RegistryError(f"{model_name}: '{alias}' has no previous holder before v{holder.version}; refusing to roll back")
    return move_alias(client, model_name, alias, str(previous), "rollback", f"rollback of '{alias}' from v{holder.version} to v{previous}")
