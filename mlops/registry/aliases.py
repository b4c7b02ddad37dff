"""Where an alias moves: under the model's alias-move lock, and recorded as one registered-model tag per move.

MLflow keeps only the current alias holder (mlflow #2169); every move made through the toolkit, promotion or
rollback, appends an event `mlops.audit.<seq>` to the registered model: who (user@host), when (UTC), which
alias, from which version to which, why (the gate report), and the source run. The lock (`ledger`) serialises
concurrent moves, so sequence numbers never collide and each event's `from_version` is the previous `to_version`.
A move that also sets the deprecated registry stage (`--legacy-stage`) sets it in the same locked, recorded step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.errors import AliasChanged, RegistryError
from mlops.registry.ledger import exclusive, now, who
from mlops.tracking import AUDIT_TAG_PREFIX, registered_model

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

ANY_HOLDER = "<any>"  # `AliasMove.expect_from`: move whoever holds the alias now


@dataclass(frozen=True)
class AliasMove:
    """A move to make: point `alias` of `model_name` at `version`, recorded as `action` ("promote", "rollback") with `why`.

    `expect_from` is the holder the decision was made against (None: nobody; `ANY_HOLDER`: whoever holds it now).
    `legacy_stage` also moves the version to that deprecated registry stage, for servers that still read stages.
    """

    model_name: str
    alias: str
    version: str
    action: str
    why: str
    expect_from: str | None = ANY_HOLDER
    legacy_stage: str | None = None


def alias_holder(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def history(client: MlflowClient, model_name: str, alias: str | None = None) -> list[dict[str, Any]]:
    """Every recorded alias move of `model_name`, oldest first (optionally for one alias)."""
    tags = registered_model(client, model_name).tags
    events = [json.loads(v) for k, v in tags.items() if k.startswith(AUDIT_TAG_PREFIX)]
    events.sort(key=lambda e: int(e["seq"]))
    return [e for e in events if alias is None or e["alias"] == alias]


def _record_move(client: MlflowClient, move: AliasMove, holder: str | None, target: ModelVersion, ticket: str) -> dict[str, Any]:
    """Move the alias (and the legacy stage) and append the event; only ever called under the model's lock."""
    client.set_registered_model_alias(move.model_name, move.alias, target.version)
    if move.legacy_stage is not None:
        client.transition_model_version_stage(move.model_name, str(target.version), move.legacy_stage, archive_existing_versions=True)
    seqs = [int(e["seq"]) for e in history(client, move.model_name)]
    event = {
        "seq": max(seqs, default=0) + 1,
        "action": move.action,
        "alias": move.alias,
        "from_version": holder,
        "to_version": str(target.version),
        "who": who(),
        "when": now(),
        "why": move.why[:2000],
        "source_run_id": target.run_id,
        "ticket": ticket,
    }
    if move.legacy_stage is not None:
        event["legacy_stage"] = move.legacy_stage
    client.set_registered_model_tag(move.model_name, f"{AUDIT_TAG_PREFIX}{event['seq']:06d}", json.dumps(event))
    return event


def record_event(client: MlflowClient, version: ModelVersion, alias: str, action: str, why: str) -> dict[str, Any]:
    """Append an event that moves nothing (a version awaiting approval) to the audit trail, under the model's lock."""
    with exclusive(client, version.name, 60.0) as ticket:
        holder = alias_holder(client, version.name, alias)
        seqs = [int(e["seq"]) for e in history(client, version.name)]
        event = {
            "seq": max(seqs, default=0) + 1,
            "action": action,
            "alias": alias,
            "from_version": str(holder.version) if holder is not None else None,
            "to_version": str(version.version),
            "who": who(),
            "when": now(),
            "why": why[:2000],
            "source_run_id": version.run_id,
            "ticket": ticket,
        }
        client.set_registered_model_tag(version.name, f"{AUDIT_TAG_PREFIX}{event['seq']:06d}", json.dumps(event))
    return event


def _version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    registered_model(client, model_name)
    try:
        return client.get_model_version(model_name, version)
    except MlflowException:
        raise RegistryError(f"{model_name}: no version {version}") from None


def move_alias(client: MlflowClient, move: AliasMove, wait_s: float = 60.0) -> dict[str, Any]:
    """Make `move` under the model's lock and append it to the audit trail; returns the event.

    If another move got there first (the alias is no longer held by `move.expect_from`), `AliasChanged` is raised
    and nothing moves.
    """
    target = _version(client, move.model_name, move.version)
    with exclusive(client, move.model_name, wait_s) as ticket:
        holder = alias_holder(client, move.model_name, move.alias)
        current = str(holder.version) if holder is not None else None
        if move.expect_from != ANY_HOLDER and current != move.expect_from:
            shown = f"v{current}" if current else "nobody"
            raise AliasChanged(
                f"{move.model_name}: '{move.alias}' now held by {shown}, not v{move.expect_from} as when this move was decided"
            )
        return _record_move(client, move, current, target, ticket)


def rollback(client: MlflowClient, model_name: str, alias: str, wait_s: float = 60.0) -> dict[str, Any]:
    """Move `alias` back to the version that held it before the current holder, through the audit path."""
    model = registered_model(client, model_name)
    with exclusive(client, model_name, wait_s) as ticket:
        holder = alias_holder(client, model_name, alias)
        if holder is None:
            held = ", ".join(sorted(model.aliases)) or "none"
            raise RegistryError(f"{model_name}: no version holds '{alias}' (aliases held: {held}); nothing to roll back")
        moves = [e for e in history(client, model_name, alias) if e["to_version"] == str(holder.version) and e["action"] != "awaiting"]
        previous = moves[-1]["from_version"] if moves else None
        if previous is None:
            raise RegistryError(f"{model_name}: '{alias}' has no previous holder before v{holder.version}; refusing to roll back")
        target = client.get_model_version(model_name, str(previous))
        move = AliasMove(model_name, alias, str(previous), "rollback", f"rollback of '{alias}' from v{holder.version} to v{previous}")
        return _record_move(client, move, str(holder.version), target, ticket)
