"""The manual's webhook receiver (docs/examples/webhook_receiver.py) against a real `mlflow server` on SQLite: a
version that passes a gate requiring approval reaches it as "ask a person", and the approved alias move as "deploy",
each delivery signed with the webhook's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import HTTPServer
from typing import Any, ClassVar

import mlflow
import pytest
from mlflow import MlflowClient

from mlops.evaluate import PerExampleScores, classification_scores
from mlops.registry import AliasPolicy, Gate, PromotionPolicy, approve, promote_if_gates_pass, register_version
from mlops.tracking import PER_EXAMPLE_ARTIFACT
from tests.helpers import ROOT, isolated_store, wait_until_answers
from tests.services import free_port

pytestmark = pytest.mark.slow
SECRET = "a-shared-secret"


def _example() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "docs" / "examples" / "webhook_receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]], list[int]]]:
    """The example's receiver on a free port, its actions recording what they were asked to do; (url, actions, codes)."""
    example = _example()
    actions: list[tuple[str, dict[str, Any]]] = []
    codes: list[int] = []

    class Recording(example.Receiver):  # type: ignore[name-defined,misc]
        secret = SECRET
        actions: ClassVar[dict[str, Any]] = {
            "ask": lambda data: actions.append(("ask", data)),
            "deploy": lambda data: actions.append(("deploy", data)),
        }

        def send_response(self, code: int, message: str | None = None) -> None:
            codes.append(code)
            super().send_response(code, message)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Recording)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/mlflow", actions, codes
    server.shutdown()


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on SQLite, allowed to deliver to a receiver on 127.0.0.1 over http (the settings the manual names)."""
    folder = tmp_path_factory.mktemp("webhooks")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true"}
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"http://127.0.0.1:{port}"
    wait_until_answers(proc, f"{address}/health", "mlflow server")
    with isolated_store(folder, address):
        yield address
    os.killpg(proc.pid, signal.SIGTERM)  # the server and the workers it started
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_for(actions: list[tuple[str, dict[str, Any]]], count: int) -> None:
    deadline = time.monotonic() + 30  # deliveries are asynchronous
    while len(actions) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_approval_and_the_alias_move_reach_the_receiver_signed(
    tracking_server: str, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, actions, codes = receiver
    client = MlflowClient()
    client.create_webhook(name="registry-to-chat", url=url, events=["model_version_tag.set", "model_version_alias.created"], secret=SECRET)
    monkeypatch.setenv("LOGNAME", "alice")

    labels = [i % 2 for i in range(100)]
    scores = PerExampleScores("classification", "d0", [f"id{i}" for i in range(100)], labels, labels, ["legit", "fraud"])
    mlflow.set_experiment("webhooks")
    with mlflow.start_run() as run:
        mlflow.log_metrics(classification_scores(labels, labels, "test"))
        mlflow.log_dict(scores.to_document(), PER_EXAMPLE_ARTIFACT)
    version = register_version(client, "detector", f"runs:/{run.info.run_id}/model", run.info.run_id, {})
    policy = PromotionPolicy("detector", {"production": AliasPolicy([Gate("test_f1", min=0.9)], approval="required")})
    report = promote_if_gates_pass(client, policy, version, "production")
    assert report.awaiting_approval

    _wait_for(actions, 1)
    asked = [data for action, data in actions if action == "ask"]
    assert asked == [{"name": "detector", "version": "1", "key": "mlops.approval.production", "value": "awaiting"}]
    assert not [a for a in actions if a[0] == "deploy"]  # nothing moved yet

    approve(client, client.get_model_version("detector", "1"), None, "read the report")
    _wait_for(actions, 2)
    assert ("deploy", {"name": "detector", "alias": "production", "version": "1"}) in actions
    assert len([a for a in actions if a[0] == "ask"]) == 1  # every other tag (the gate reports, the record) asked nothing
    assert codes and set(codes) == {204}  # every delivery verified


def test_a_delivery_with_another_secret_is_refused() -> None:
    example = _example()
    body = b'{"entity": "model_version_alias", "action": "created", "data": {}}'
    now = str(int(time.time()))
    signed = base64.b64encode(hmac.new(b"wrong", f"d1.{now}.".encode() + body, hashlib.sha256).digest()).decode()
    headers = {"X-MLflow-Delivery-Id": "d1", "X-MLflow-Timestamp": now, "X-MLflow-Signature": f"v1,{signed}"}
    assert not example.verify(SECRET, headers, body)
    right = base64.b64encode(hmac.new(SECRET.encode(), f"d1.{now}.".encode() + body, hashlib.sha256).digest()).decode()
    assert example.verify(SECRET, {**headers, "X-MLflow-Signature": f"v1,{right}"}, body)
    assert not example.verify(
        SECRET, {**headers, "X-MLflow-Timestamp": str(int(time.time()) - 3600), "X-MLflow-Signature": f"v1,{right}"}, body
    )
