"""One error root for the toolkit, with narrow subclasses the CLI maps to exit code 2.

Errors below `MlopsError` are user mistakes or refused actions: they are printed as a
single line without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class of every error the toolkit raises on purpose."""

    exit_code = 2


class ConfigError(MlopsError):
    """A configuration file or override is malformed, unknown or out of range.

    Holds every problem found, so that one run reports all of them at once.
    """

    def __init__(self, errors: list[str] | str, source: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.errors))


class DataError(MlopsError):
    """A dataset is missing, unreadable, empty, or lacks a column or a class."""


class ModelSourceError(MlopsError):
    """A model source cannot be resolved offline, or needs a set-up step first."""


class GateFailed(MlopsError):
    """A promotion gate did not pass; no alias was moved."""


class RegistryError(MlopsError):
    """The model registry refused an action or is in an unexpected state."""


class SummarizationConfigError(ConfigError, ValueError):
    """A summarisation setting (template, token budget, decoding) that cannot work; also a `ValueError`."""


class TrackingServerError(MlopsError):
    """The tracking server is unreachable, refuses the credentials, or cannot store artifacts."""


class WordNetMissing(MlopsError):
    """The WordNet database is not installed where nltk looks for it."""


class SweepError(MlopsError):
    """The sweep ran but no trial completed."""


class SplitMismatch(RegistryError):
    """Champion and challenger were scored on different test examples, so they cannot be compared."""


class AliasChanged(RegistryError):
    """The alias moved between the decision and the move; decide again against the new holder."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""
