"""Fail fast on a remote tracking server: unreachable, refusing the credentials, or unable to store artifacts.

`check_tracking_server` runs before an entry point starts its run. `server_gone_error` tells a failed
run whether the server went away meanwhile: then nothing more can be logged, and waiting on MLflow's
retries would only delay the one-line error.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from mlops.errors import TrackingServerError

if TYPE_CHECKING:
    import requests

PREFLIGHT_TIMEOUT = 10  # seconds per request; the whole check makes three
_PROBE_PATH = "mlops-preflight"  # listed, never written: a missing folder lists as empty on every artifact store


def _remote_uri() -> str | None:
    import mlflow

    uri = mlflow.get_tracking_uri()
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def _network_reason(exc: BaseException) -> str:
    """Why a request never got an answer, in a few words (MLflow wraps the `requests` error)."""
    import requests

    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(cause, requests.exceptions.Timeout):
        return "no answer within the timeout"
    if isinstance(cause, requests.exceptions.SSLError):
        return "TLS handshake failed"
    text = str(cause)
    for marker, reason in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host")):
        if marker in text:
            return reason
    return type(cause).__name__


def _get(uri: str, path: str, timeout: int, params: dict[str, str] | None = None) -> requests.Response:
    """One GET with MLflow's own credentials and TLS settings, no retries."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        response: requests.Response = http_request(
            get_default_host_creds(uri), path, "GET", max_retries=0, timeout=timeout, raise_on_status=False, params=params
        )
    except MlflowException as exc:
        raise TrackingServerError(
            f"tracking server {uri} is not reachable ({_network_reason(exc)}): is it running? Check MLFLOW_TRACKING_URI"
        ) from None
    return response


def _message(response: requests.Response) -> str:
    """The server's error message (MLflow answers JSON with a `message`), on one line."""
    try:
        text = str(response.json().get("message", ""))
    except ValueError:
        text = response.text
    return " ".join(text.split())[:300] or f"HTTP {response.status_code}"


def check_tracking_server(timeout: int = PREFLIGHT_TIMEOUT) -> None:
    """Raise `TrackingServerError` unless the remote tracking server answers, accepts our credentials and
    can list its artifact store. A no-op for local stores (SQLite, files).

    The artifact check lists a folder that need not exist: it reads, never writes, and catches a missing
    bucket or credentials the store refuses. A store that accepts reads but refuses writes still fails
    at the first upload.
    """
    uri = _remote_uri()
    if uri is None:
        return
    health = _get(uri, "/health", timeout)
    if health.status_code != 200:
        raise TrackingServerError(
            f"{uri} does not answer as an MLflow tracking server (GET /health: HTTP {health.status_code}): check MLFLOW_TRACKING_URI"
        )
    api = _get(uri, "/api/2.0/mlflow/experiments/search", timeout, {"max_results": "1"})
    if api.status_code == 401:
        raise TrackingServerError(
            f"tracking server {uri} refused the credentials (HTTP 401): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if api.status_code == 403:
        raise TrackingServerError(f"tracking server {uri} denied access (HTTP 403): {_message(api)}")
    if api.status_code != 200:
        raise TrackingServerError(f"tracking server {uri} failed a search (HTTP {api.status_code}): {_message(api)}")
    artifacts = _get(uri, "/api/2.0/mlflow-artifacts/artifacts", timeout, {"path": _PROBE_PATH})
    if artifacts.status_code == 503:  # the server does not proxy artifacts (--no-serve-artifacts): clients write directly
        return
    if artifacts.status_code != 200:
        raise TrackingServerError(
            f"tracking server {uri} cannot use its artifact store (HTTP {artifacts.status_code}): {_message(artifacts)}"
        )


def server_gone_error(exc: BaseException) -> TrackingServerError | None:
    """`exc` itself if it is a `TrackingServerError`; a new one if the remote tracking server no longer
    answers `/health`; else None (the failure is the run's own, or the store is local)."""
    if isinstance(exc, TrackingServerError):
        return exc
    uri = _remote_uri()
    if uri is None:
        return None
    try:
        health = _get(uri, "/health", timeout=5)
    except TrackingServerError as gone:
        return TrackingServerError(f"{gone} (it went away during the run: {type(exc).__name__})")
    if health.status_code != 200:
        return TrackingServerError(f"tracking server {uri} stopped answering (GET /health: HTTP {health.status_code}) during the run")
    return None


def abandon_active_run() -> None:
    """Drop the active run locally when its server is gone, and stop retrying requests for the rest of
    the process: MLflow's default retries would spend minutes on a server that is not there.

    The run stays RUNNING on the server; a resumed sweep ends such runs FAILED.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "5"
    with contextlib.suppress(MlflowException):
        mlflow.end_run("FAILED")  # pops the run first, then fails to reach the server
