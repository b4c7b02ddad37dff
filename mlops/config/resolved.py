"""The resolved config: what one run trained with (the config, with that run's training and decoding settings),
logged as `config/resolved.json` and read back to reproduce the run."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from mlops.config._load import validate

if TYPE_CHECKING:
    from mlops.config._experiment import ExperimentConfig
    from mlops.config._training import GenerationConfig, TrainingConfig


def resolved_config(config: ExperimentConfig, hp: TrainingConfig, generation: GenerationConfig) -> dict[str, Any]:
    """The config a run trained with, as JSON: `config` with the run's training and decoding settings applied."""
    settings = asdict(replace(config, training=hp, generation=generation))
    settings.pop("source_file")  # set by the loader, not a config key; kept beside it (relative dataset paths start there)
    return {"config": settings, "source_file": config.source_file}


def config_from_resolved(document: dict[str, Any], where: str) -> ExperimentConfig:
    """Rebuild (and re-validate) a config logged by `resolved_config`."""
    return validate(document.get("config"), where, str(document.get("source_file", "")))
