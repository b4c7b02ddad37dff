"""Tracking: the runs entry points log to (and how they end), the tracking-server preflight, the recorded environment
and seeds, rank-0 logic for distributed launches, dataset inputs, and `models:/` look-ups. The bottom layer, beside `mlops.config`."""

from mlops.tracking.datasets import RUN_ARTIFACT_SCHEME, frame_digest, log_inputs, pandas_input
from mlops.tracking.distributed import is_main_process, process_rank, world_size
from mlops.tracking.environment import describe_environment, log_environment, seed_everything
from mlops.tracking.model_uris import registered_model, resolve_model_version
from mlops.tracking.runs import (
    SYSTEM_METRICS_INTERVAL,
    buffer_async_logging,
    default_system_metrics_interval,
    ended,
    entry_run,
    log_params_effective,
    redact_url,
)
from mlops.tracking.server import PREFLIGHT_TIMEOUT, abandon_active_run, check_tracking_server, server_gone_error

__all__ = [
    "PREFLIGHT_TIMEOUT",
    "RUN_ARTIFACT_SCHEME",
    "SYSTEM_METRICS_INTERVAL",
    "abandon_active_run",
    "buffer_async_logging",
    "check_tracking_server",
    "default_system_metrics_interval",
    "describe_environment",
    "ended",
    "entry_run",
    "frame_digest",
    "is_main_process",
    "log_environment",
    "log_inputs",
    "log_params_effective",
    "pandas_input",
    "process_rank",
    "redact_url",
    "registered_model",
    "resolve_model_version",
    "seed_everything",
    "server_gone_error",
    "world_size",
]
