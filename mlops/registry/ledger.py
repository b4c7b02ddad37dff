"""One alias move at a time per registered model, across processes and machines, on MLflow's one atomic write.

MLflow has no compare-and-set for aliases or tags (a tag write overwrites), but a run parameter is written
once: logging another value for an existing key fails, in every tracking store. The ledger is one run (in the
experiment `mlops-registry-ledger`) whose parameters are claims, per model:

    <model>/<ticket>         {"nonce", "who", "at"}    a numbered place in the model's queue
    <model>/<ticket>/start   the nonce                 its holder entered the critical section
                             "revoked by <nonce>"      a waiter gave up on a holder that never started
    <model>/<ticket>/done    the nonce, "revoked" or "abandoned by <nonce>"

A mover takes the next free ticket, waits until every lower ticket is done, claims `start`, does its move,
then claims `done`: a first-come, first-served lock, so each move sees the holder the previous one left.
A holder that stops (killed, hung) is passed over after `wait_s` by the next in line.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops.errors import RegistryError
from mlops.tracking import LEDGER_RUN_TAG, ROLE_TAG
from mlops.tracking.links import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, NOTE_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

LEDGER_EXPERIMENT = "mlops-registry-ledger"
_CREATION_WAIT_S = 30.0
LEDGER_EXPERIMENT_TAGS = {
    NOTE_TAG: (
        "Bookkeeping of the mlops model registry, not an experiment: its one run, `alias-moves`, holds as parameters the "
        "queue that orders alias moves (promote, rollback, approve) per registered model. Log no runs here, and do not "
        "delete it. Each move itself is recorded on the registered model (`mlops registry history MODEL`)."
    ),
    EXPERIMENT_KIND_TAG: EXPERIMENT_KIND,
}


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _ledger_run_id(client: MlflowClient) -> str:
    """The ledger run; the process that creates the ledger experiment creates the run, the others wait for it."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(LEDGER_EXPERIMENT)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(LEDGER_EXPERIMENT, tags={ROLE_TAG: "registry-ledger", **LEDGER_EXPERIMENT_TAGS})
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        else:
            run = client.create_run(experiment_id, run_name="alias-moves", tags={ROLE_TAG: "registry-ledger"})
            client.set_terminated(run.info.run_id, "FINISHED")  # claims are logged to it later; it is never RUNNING
            client.set_experiment_tag(experiment_id, LEDGER_RUN_TAG, run.info.run_id)
            return str(run.info.run_id)
    deadline = time.monotonic() + _CREATION_WAIT_S
    while True:
        experiment = client.get_experiment_by_name(LEDGER_EXPERIMENT)
        if experiment is not None and experiment.lifecycle_stage != "active":
            raise RegistryError(
                f"experiment '{LEDGER_EXPERIMENT}' (the alias-move ledger) is deleted; "
                f"restore it: mlflow experiments restore --experiment-id {experiment.experiment_id}"
            )
        if experiment is not None and LEDGER_RUN_TAG in experiment.tags:
            return str(experiment.tags[LEDGER_RUN_TAG])
        if time.monotonic() > deadline:
            raise RegistryError(
                f"experiment '{LEDGER_EXPERIMENT}' has no ledger run: the process creating it stopped; delete the experiment and retry"
            )
        time.sleep(0.2)


def _namespace(model_name: str) -> str:
    """The model name as a parameter-key prefix (registered model names never contain '/')."""
    if re.fullmatch(r"[\w.\- ]{1,200}", model_name):
        return model_name
    return "model-" + hashlib.sha1(model_name.encode("utf-8")).hexdigest()[:16]


@dataclass
class _Queue:
    tickets: dict[int, str] = field(default_factory=dict)
    start: dict[int, str] = field(default_factory=dict)
    done: dict[int, str] = field(default_factory=dict)


class _Ledger:
    def __init__(self, client: MlflowClient, model_name: str) -> None:
        self.client = client
        self.run_id = _ledger_run_id(client)
        self.prefix = _namespace(model_name) + "/"

    def key(self, ticket: int, part: str = "") -> str:
        return f"{self.prefix}{ticket:06d}" + (f"/{part}" if part else "")

    def queue(self) -> _Queue:
        queue = _Queue()
        for key, value in self.client.get_run(self.run_id).data.params.items():
            if not key.startswith(self.prefix):
                continue
            number, _, part = key[len(self.prefix) :].partition("/")
            if number.isdigit():
                {"": queue.tickets, "start": queue.start, "done": queue.done}.get(part, {})[int(number)] = value
        return queue

    def claim(self, key: str, value: str) -> bool:
        """Write `key` = `value` once: True if this call (or an earlier one with the same value) wrote it, False if taken."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_param(self.run_id, key, value)
        except MlflowException:
            current = self.client.get_run(self.run_id).data.params.get(key)
            if current is None:
                raise
            return current == value
        return True


def _take_ticket(ledger: _Ledger, claim: str) -> int:
    while True:
        ticket = max(ledger.queue().tickets, default=0) + 1
        if ledger.claim(ledger.key(ticket), claim):
            return ticket


def _pass_over(ledger: _Ledger, queue: _Queue, ticket: int, nonce: str) -> None:
    """Release a ticket whose holder stopped: revoke it if it never started, else mark its move abandoned."""
    if ticket not in queue.start:
        if ledger.claim(ledger.key(ticket, "start"), f"revoked by {nonce}"):
            ledger.claim(ledger.key(ticket, "done"), "revoked")
            logger.warning("alias-move ticket %s was never served; revoked", ledger.key(ticket))
        return
    ledger.claim(ledger.key(ticket, "done"), f"abandoned by {nonce}")
    logger.warning("alias-move ticket %s started but never finished; its move is abandoned", ledger.key(ticket))


def _wait_for_turn(ledger: _Ledger, ticket: int, nonce: str, wait_s: float, poll_s: float) -> bool:
    """Wait until every lower ticket is done, then claim `start`; False if this ticket was revoked meanwhile."""
    blocker: tuple[int, bool] | None = None
    since = time.monotonic()
    while True:
        queue = ledger.queue()
        if queue.start.get(ticket, nonce) != nonce:
            return False
        pending = sorted(t for t in queue.tickets if t < ticket and t not in queue.done)
        if not pending:
            return ledger.claim(ledger.key(ticket, "start"), nonce)
        state = (pending[0], pending[0] in queue.start)
        if state != blocker:
            blocker, since = state, time.monotonic()
        elif time.monotonic() - since > wait_s:
            _pass_over(ledger, queue, pending[0], nonce)
            blocker = None
            continue
        time.sleep(poll_s)


@contextmanager
def exclusive(client: MlflowClient, model_name: str, wait_s: float = 60.0, poll_s: float = 0.2) -> Iterator[str]:
    """Hold `model_name`'s alias-move lock; yields the ticket's ledger key (recorded with the audit event)."""
    ledger = _Ledger(client, model_name)
    nonce = uuid.uuid4().hex
    claim = json.dumps({"nonce": nonce, "who": who(), "at": now()})
    while True:
        ticket = _take_ticket(ledger, claim)
        if _wait_for_turn(ledger, ticket, nonce, wait_s, poll_s):
            break
        logger.warning("alias-move ticket %s was revoked while waiting; taking a new one", ledger.key(ticket))
    try:
        yield ledger.key(ticket)
    finally:
        ledger.claim(ledger.key(ticket, "done"), nonce)
