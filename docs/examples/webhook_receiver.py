"""Receive the model registry's webhooks: verify each delivery's signature, then ask a person to approve a version
that awaits it, or deploy the version an alias moved to. Run it where the tracking server can reach it:

    MLOPS_WEBHOOK_SECRET=... python webhook_receiver.py 8080

Replace `ask_a_person` and `deploy` with a message to your chat channel or a call to your CI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

MAX_AGE_SECONDS = 300  # older deliveries are refused (replays)


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """MLflow signs `<delivery id>.<timestamp>.<body>` with HMAC-SHA256 and sends `v1,<base64 digest>`."""
    delivery_id = headers.get("X-MLflow-Delivery-Id", "")
    timestamp = headers.get("X-MLflow-Timestamp", "0")
    signature = headers.get("X-MLflow-Signature", "")
    if not signature.startswith("v1,") or abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(signature.removeprefix("v1,"), expected)


def decide(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """What to do about one event: ("ask", data) for a version awaiting approval, ("deploy", data) for an alias
    moved to a version; None for everything else (every other tag, for one)."""
    kind, data = f"{event['entity']}.{event['action']}", event["data"]
    if kind == "model_version_tag.set" and data["key"].startswith("mlops.approval.") and data["value"] == "awaiting":
        return "ask", data  # mlops approve --model NAME --version N
    if kind == "model_version_alias.created":
        return "deploy", data  # data["name"], data["alias"], data["version"]
    return None


def ask_a_person(data: dict[str, Any]) -> None:
    alias = data["key"].removeprefix("mlops.approval.")
    print(
        f"{data['name']} v{data['version']} awaits approval for '{alias}': mlops approve --model {data['name']} --version {data['version']}"
    )


def deploy(data: dict[str, Any]) -> None:
    print(f"deploy models:/{data['name']}@{data['alias']} (version {data['version']})")


class Receiver(BaseHTTPRequestHandler):
    secret = os.environ.get("MLOPS_WEBHOOK_SECRET", "")
    actions: ClassVar[dict[str, Callable[[dict[str, Any]], None]]] = {"ask": ask_a_person, "deploy": deploy}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verify(self.secret, self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        decision = decide(json.loads(body))
        if decision is not None:
            action, data = decision
            self.actions[action](data)
        self.send_response(204)  # answer at once; MLflow retries a delivery that fails
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Receiver).serve_forever()
