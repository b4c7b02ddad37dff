"""Tracking: the runs entry points log to (and how they end), the tracking-server preflight, the recorded environment
and seeds, rank-0 logic for distributed launches, `models:/` look-ups, and links into the MLflow UI.
The bottom layer, beside `mlops.config`."""

from mlops.tracking.distributed import is_main_process, process_rank, world_size
from mlops.tracking.environment import describe_environment, log_environment, seed_everything
from mlops.tracking.links import UiLinks, current_links, describe_experiment, print_links
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
    "SYSTEM_METRICS_INTERVAL",
    "UiLinks",
    "abandon_active_run",
    "buffer_async_logging",
    "check_tracking_server",
    "current_links",
    "default_system_metrics_interval",
    "describe_environment",
    "describe_experiment",
    "ended",
    "entry_run",
    "is_main_process",
    "log_environment",
    "log_params_effective",
    "print_links",
    "process_rank",
    "redact_url",
    "registered_model",
    "resolve_model_version",
    "seed_everything",
    "server_gone_error",
    "world_size",
]
