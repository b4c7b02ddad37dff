"""Typed, self-validating experiment configs loaded from YAML."""

from mlops.config._load import apply_overrides, load_config, packaged_configs, read_yaml, resolve_config_path
from mlops.config._schema import (
    DECODING_PARAMETERS,
    HYPERPARAMETERS,
    SEARCH_METRICS,
    STAGES,
    STRUCTURE_PARAMETERS,
    DatasetConfig,
    ExperimentConfig,
    GenerationConfig,
    ModelConfig,
    ParamSpace,
    PipelineConfig,
    PretrainConfig,
    RegistryConfig,
    SearchConfig,
    TrainingConfig,
)
from mlops.config._validate import build

__all__ = [
    "DECODING_PARAMETERS",
    "HYPERPARAMETERS",
    "SEARCH_METRICS",
    "STAGES",
    "STRUCTURE_PARAMETERS",
    "DatasetConfig",
    "ExperimentConfig",
    "GenerationConfig",
    "ModelConfig",
    "ParamSpace",
    "PipelineConfig",
    "PretrainConfig",
    "RegistryConfig",
    "SearchConfig",
    "TrainingConfig",
    "apply_overrides",
    "build",
    "load_config",
    "packaged_configs",
    "read_yaml",
    "resolve_config_path",
]
